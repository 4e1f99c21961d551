"""The timeline folds with fold's own step, shows transitions and effect outcomes, and
honours --since/--until and resource names."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from engine.fsm import fold
from engine.journal.codec import record_from_json
from engine.journal.record import Record
from engine.replay.driver import _label_order
from engine.replay.render_json import render_json
from engine.replay.render_mermaid import render_mermaid
from engine.replay.timeline import ResourceId, Window, build_timeline
from tests.fixtures.journals.make_golden import HERE


def golden(name: str) -> list[Record]:
    lines = (HERE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()[1:]
    return [record_from_json(json.loads(line)) for line in lines]


def test_state_after_each_row_is_the_fold_of_the_records_up_to_it() -> None:
    records = golden("retry_ready")
    (timeline,) = build_timeline(records)
    assert len(timeline.rows) == len(records)
    for index, row in enumerate(timeline.rows):
        assert row.dest == fold(records[: index + 1]).state or row.trigger is not None
        assert row.position == records[index].position
    assert timeline.state == fold(records)


def test_transition_rows_carry_from_to_and_trigger_and_failures_their_error() -> None:
    (timeline,) = build_timeline(golden("retry_ready"))
    transitions = [(r.source, r.dest, r.trigger) for r in timeline.rows if r.trigger]
    assert transitions == [
        ("Pending", "Provisioning", "observed_live"),
        ("Provisioning", "Provisioning", "effect_failed"),
        ("Provisioning", "Provisioning", "effect_failed"),
        ("Provisioning", "Ready", "provisioned"),
    ]
    failed = [r for r in timeline.rows if r.event == "EffectFailed" and r.effect == "create-user"]
    assert [r.attempt for r in failed] == [1, 2]
    assert failed[0].outcome == "failed (retryable): RetryableError: create-user is busy"


def test_until_position_stops_the_fold_and_since_hides_earlier_rows() -> None:
    records = golden("delete")
    (upto,) = build_timeline(records, Window(until_position=12))
    assert upto.state.state == "Ready"
    assert upto.rows[-1].position == 12
    (tail,) = build_timeline(records, Window(since_position=20))
    assert tail.rows[0].position == 20
    assert tail.state.state == "Deleted"
    assert tail.records == len(records)


def test_until_time_and_since_time_bound_by_record_time() -> None:
    records = golden("spec_change")
    cut = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    (before,) = build_timeline(records, Window(until_time=cut))
    assert all(r.at < "2026-01-01T00:01" for r in before.rows)
    (after,) = build_timeline(records, Window(since_time=cut))
    assert all(r.at >= "2026-01-01T00:01" for r in after.rows)
    assert len(before.rows) + len(after.rows) == len(records)


def test_an_unknown_event_type_is_shown_and_skipped_by_the_fold() -> None:
    records = golden("create_ready")
    stranger = replace(records[-1], position=99, stream_version=99, type="FromTheFuture")
    (timeline,) = build_timeline([*records, stranger])
    assert timeline.rows[-1].event == "FromTheFuture"
    assert "does not know" in timeline.rows[-1].outcome
    assert timeline.state.state == "Ready"


def test_timelines_are_sorted_by_namespace_and_name_whatever_the_record_order() -> None:
    a = golden("create_ready")
    b = golden("delete")
    renamed = [replace(r, stream=r.stream.replace("/default/", "/aaa/")) for r in b]
    one = build_timeline(sorted([*a, *renamed], key=lambda r: (r.position, r.stream)))
    labels = [t.resource.label for t in one]
    assert labels == ["aaa/echo", "default/alpha"]
    assert render_json(one) == render_json(build_timeline([*a, *renamed]))
    assert render_mermaid(one).count('state "') >= 2


@pytest.mark.parametrize(
    ("stream", "label", "uid"),
    [
        pytest.param("example.com/Site/web/blog#u-1", "web/blog", "u-1", id="namespaced"),
        pytest.param("example.com/Node//n1#u-2", "n1", "u-2", id="cluster-scoped"),
        pytest.param("supervisor", "supervisor", "", id="other-shape"),
    ],
)
def test_resource_id_parses_stream_names(stream: str, label: str, uid: str) -> None:
    ident = ResourceId.of(stream)
    assert (ident.label, ident.uid) == (label, uid)


@pytest.mark.parametrize(
    "stream",
    [
        "example.com/Site/default/blog#uid-1",
        "example.com/Site//cluster-wide#uid-2",
        "apps.example.com/v/Kind/ns/name#u",
        "a/b/c#u",
        "plain-name",
        "#only-uid",
        "g/K/ns/name",
        "g/K/ns/na#me#uid",
    ],
)
def test_the_replay_orders_streams_by_their_resource_ids_namespace_and_name(stream: str) -> None:
    resource = ResourceId.of(stream)
    assert _label_order(stream) == (resource.namespace, resource.name)
