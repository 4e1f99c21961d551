"""The timeline's picture of a journal (pure): state spans, effect attempts and their
outcomes, retry delays, markers, waits between resources and deadlock cycles, folded
from the golden journals and from records built with the engine's event builders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from engine.fsm import events as ev
from engine.journal.codec import record_from_json
from engine.journal.record import NewEvent, Record
from engine.ui.lanes import StreamName
from engine.ui.picture import Picture
from tests.fixtures.journals.make_golden import HERE

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def golden(name: str) -> list[Record]:
    lines = (HERE / f"{name}.jsonl").read_text().splitlines()[1:]
    return [record_from_json(json.loads(line)) for line in lines]


def picture_of(records: list[Record]) -> Picture:
    picture = Picture()
    for record in records:
        picture.add(record)
    return picture


class Streams:
    """Records for several streams in position order, built with the event builders."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.versions: dict[str, int] = {}

    def add(self, name: str, event: NewEvent, *, seconds: float) -> None:
        stream = f"example.dev/Site/default/{name}#uid-{name}"
        version = self.versions[stream] = self.versions.get(stream, 0) + 1
        self.records.append(
            Record(
                position=len(self.records) + 1, stream=stream, stream_version=version,
                type=event.type, schema=event.schema, at=T0 + timedelta(seconds=seconds),
                data=dict(event.data), idempotency_key=event.idempotency_key,
                trace_id=None, span_id=None, term=1, checksum="",
            )
        )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "states"),
    [
        pytest.param("create_ready", ["Pending", "Provisioning", "Ready"], id="create_ready"),
        pytest.param("retry_ready", ["Pending", "Provisioning", "Ready"], id="retry_ready"),
        pytest.param(
            "permanent_failed", ["Pending", "Provisioning", "Failed"], id="permanent_failed"
        ),
        pytest.param(
            "delete", ["Pending", "Provisioning", "Ready", "Finalizing", "Deleted"], id="delete"
        ),
    ],
)
def test_a_golden_journal_folds_into_one_lane_of_its_state_spans(
    name: str, states: list[str]
) -> None:
    picture = picture_of(golden(name))
    [lane] = picture.ordered()
    assert [s.state for s in lane.spans] == states
    assert lane.spans[-1].end is None  # still in its last state
    for before, after in zip(lane.spans, lane.spans[1:], strict=False):
        assert before.end == after.start
    transitions = [r for r in golden(name) if r.type == ev.TRANSITION_TAKEN]
    assert [m.position for m in lane.markers if m.kind == "transition"] == [
        r.position for r in transitions
    ]


def test_each_failed_attempt_keeps_its_outcome_and_its_retry_delay() -> None:
    records = golden("retry_ready")
    [lane] = picture_of(records).ordered()
    failed = [a for a in lane.attempts if a.outcome == "retryable"]
    delays = [r.data["delay"] for r in records if r.type == ev.RETRY_SCHEDULED]
    assert len(failed) == len([r for r in records if r.type == ev.EFFECT_FAILED])
    assert sorted(a.retry_delay for a in failed if a.retry_delay is not None) == sorted(delays)
    assert all(a.end is not None and a.message for a in failed)
    assert lane.outcomes() == {"retryable", "succeeded"}


def test_a_permanent_failure_is_an_attempt_of_outcome_permanent() -> None:
    [lane] = picture_of(golden("permanent_failed")).ordered()
    permanent = [a for a in lane.attempts if a.outcome == "permanent"]
    assert permanent
    assert all("PermanentError" in a.message for a in permanent)


def test_a_dependency_wait_names_the_resource_waited_for() -> None:
    streams = Streams()
    key = "uid-docs:1:provision"
    streams.add("docs", ev.effect_started(key=key, name="provision", attempt=1), seconds=0)
    streams.add(
        "docs",
        ev.effect_failed(
            key=key, name="provision", attempt=1, error_class="DependencyNotReady",
            retryable=True, message="waiting for default/blog to be Ready", waiting=True,
        ),
        seconds=0.5,
    )  # fmt: skip
    streams.add(
        "docs",
        ev.effect_failed(
            key=key, name="provision", attempt=2, error_class="DependencyNotReady",
            retryable=True, waiting=True,
            message="waiting for default/shop, which does not exist yet to be Ready",
        ),
        seconds=1.0,
    )  # fmt: skip
    [lane] = picture_of(streams.records).ordered()
    assert [(w.target, w.missing, w.at) for w in lane.waits] == [
        ("default/blog", False, 0.5),
        ("default/shop", True, 1.0),
    ]
    assert lane.attempts[0].outcome == "waiting"
    assert lane.attempts[0].end == 0.5


def test_a_deadlock_journaled_in_each_member_is_one_cycle_of_labels() -> None:
    streams = Streams()
    cycle = ("example.dev/Site/default/a#uid-a", "example.dev/Site/default/b#uid-b")
    for name in ("a", "b"):
        streams.add(name, ev.deadlock_detected(cycle=cycle), seconds=2)
    picture = picture_of(streams.records)
    [deadlock] = picture.deadlocks
    assert deadlock.cycle == ("default/a", "default/b")
    assert deadlock.at == 0.0  # the first record is the origin
    assert all(lane.markers[0].kind == "deadlock" for lane in picture.ordered())
    assert "default/a → default/b → default/a" in picture.ordered()[0].markers[0].text


def test_lanes_are_ordered_by_namespace_and_name_and_found_by_label() -> None:
    streams = Streams()
    for name in ("zeta", "alpha", "mid"):
        streams.add(
            name, ev.status_written(phase="Pending", observed_generation=1, reason=None), seconds=0
        )
    picture = picture_of(streams.records)
    assert [lane.resource.name for lane in picture.ordered()] == ["alpha", "mid", "zeta"]
    assert [lane.resource.name for lane in picture.lanes_of("default/mid")] == ["mid"]
    assert picture.lanes_of("default/none") == []


@pytest.mark.parametrize(
    ("stream", "label", "kind"),
    [
        pytest.param("example.dev/Site/default/blog#u1", "default/blog", "Site", id="namespaced"),
        pytest.param("example.dev/Node//n1#u2", "n1", "Node", id="cluster-scoped"),
        pytest.param("odd-stream", "odd-stream", "", id="other-shape"),
    ],
)
def test_a_stream_name_parses_into_its_resource(stream: str, label: str, kind: str) -> None:
    resource = StreamName.of(stream)
    assert resource.label == label
    assert resource.kind == kind
