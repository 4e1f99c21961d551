"""The spec of an earlier generation, rebuilt from the journal for a resumed effect."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.fsm import Observation
from engine.fsm import events as ev
from engine.journal.codec import REDACTED
from engine.journal.record import Record
from engine.runtime.reconcile.recorded_spec import restore_secrets, spec_at_generation


def observed(position: int, generation: int, spec: dict[str, object] | None) -> Record:
    event = ev.observed(
        Observation(uid="u", generation=generation), watch_event="MODIFIED", spec=spec or {}
    )
    data = dict(event.data)
    if spec is None:
        data["spec"] = None  # stored as an excerpt: too large to journal in full
    return Record(
        position=position,
        stream="s",
        stream_version=position,
        type=event.type,
        schema=event.schema,
        at=datetime(2026, 1, 1, tzinfo=UTC),
        data=data,
        idempotency_key=None,
        trace_id=None,
        span_id=None,
        term=0,
        checksum="",
    )


def test_the_last_spec_observed_at_the_generation_is_taken() -> None:
    records = [
        observed(1, 1, {"domain": "a"}),
        observed(2, 1, {"domain": "a", "replicas": 2}),
        observed(3, 2, {"domain": "b"}),
    ]
    assert spec_at_generation(records, 1) == {"domain": "a", "replicas": 2}
    assert spec_at_generation(records, 3) is None


def test_a_spec_journaled_as_an_excerpt_cannot_be_rebuilt() -> None:
    assert spec_at_generation([observed(1, 1, None)], 1) is None


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        pytest.param({"password": "now"}, {"domain": "a", "password": "now"}, id="from-live"),
        pytest.param({}, {"domain": "a"}, id="gone-from-live"),
    ],
)
def test_redacted_secrets_come_from_the_live_spec(
    live: dict[str, object], expected: dict[str, object]
) -> None:
    recorded = {"domain": "a", "password": REDACTED}
    assert restore_secrets(recorded, live, ("spec.password",)) == expected


def test_a_recorded_value_that_is_not_redacted_is_kept() -> None:
    recorded = {"password": "then"}
    assert restore_secrets(recorded, {"password": "now"}, ("spec.password",)) == recorded
