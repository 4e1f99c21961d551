"""A large, foldable journal for the timeline benchmark: many resources, each with a
fixed number of records through the event builders of `engine.fsm.events`: most go
Ready at the first attempt, every fifth after a retryable failure and a retry, every
fiftieth ends Failed; waves of resources interleave as a live engine writes them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from engine.fsm import events as ev
from engine.fsm.observation import Observation
from engine.journal.codec import GENESIS, decode_row, encode_at, encode_event, make_row
from engine.journal.record import NewEvent, Record

RECORDS_PER_RESOURCE = 20
WAVE = 500
STEP = timedelta(milliseconds=40)
"""Time between one record of a resource and its next (the wave's records share it)."""


def _observed(uid: str, version: int, **changes: object) -> NewEvent:
    fields: dict[str, object] = {
        "uid": uid,
        "generation": 1,
        "resource_version": str(100 + version),
        "spec_digest": "0" * 64,
        "has_finalizer": version > 1,
        **changes,
    }
    return ev.observed(
        Observation(**fields),  # type: ignore[arg-type]
        watch_event="ADDED" if version == 1 else "MODIFIED",
        spec={"domain": "bench.example.com"},
    )


def _events(number: int, uid: str) -> list[NewEvent]:
    key = f"{uid}:1:"
    opening = [
        _observed(uid, 1),
        ev.transition_taken(
            source="Pending", dest="Provisioning", trigger="observed_live", generation=1
        ),
        _observed(uid, 2),
        ev.status_written(phase="Provisioning", observed_generation=1, reason=None),
        ev.effect_started(key=key + "provision", name="provision", attempt=1, term=1),
        ev.effect_started(key=key + "create", name="create", attempt=1, term=1),
    ]
    if number % 50 == 7:
        ending = [
            ev.effect_failed(
                key=key + "create", name="create", attempt=1, error_class="PermanentError",
                retryable=False, message="the domain is reserved", seconds=0.05,
            ),
            ev.effect_failed(
                key=key + "provision", name="provision", attempt=1,
                error_class="PermanentError", retryable=False,
                message="the domain is reserved", seconds=0.06,
            ),
            ev.transition_taken(
                source="Provisioning", dest="Failed", trigger="permanent_error", generation=1
            ),
            ev.status_written(phase="Failed", observed_generation=1, reason="reserved"),
        ]  # fmt: skip
    elif number % 5 == 1:
        ending = [
            ev.effect_failed(
                key=key + "create", name="create", attempt=1, error_class="RetryableError",
                retryable=True, message="registry busy", seconds=0.04,
            ),
            ev.retry_scheduled(key=key + "create", attempt=1, delay=0.2, backoff=0.2),
            ev.effect_started(key=key + "create", name="create", attempt=2, term=1),
            ev.effect_succeeded(
                key=key + "create", name="create", attempt=2, result=None, seconds=0.03
            ),
            ev.effect_succeeded(
                key=key + "provision", name="provision", attempt=1, result=None, seconds=0.3
            ),
            ev.transition_taken(
                source="Provisioning", dest="Ready", trigger="provisioned", generation=1
            ),
            ev.status_written(phase="Ready", observed_generation=1, reason=None),
        ]  # fmt: skip
    else:
        ending = [
            ev.effect_succeeded(
                key=key + "create", name="create", attempt=1, result=None, seconds=0.03
            ),
            ev.effect_succeeded(
                key=key + "provision", name="provision", attempt=1, result=None, seconds=0.05
            ),
            ev.transition_taken(
                source="Provisioning", dest="Ready", trigger="provisioned", generation=1
            ),
            ev.status_written(phase="Ready", observed_generation=1, reason=None),
        ]
    events = opening + ending
    version = 3
    while len(events) < RECORDS_PER_RESOURCE:  # resyncs fill the lane to its share
        events.append(_observed(uid, version, status_phase="Ready"))
        version += 1
    return events


def bench_records(resources: int, *, start: datetime | None = None) -> Iterator[Record]:
    """`resources` times `RECORDS_PER_RESOURCE` chained records, waves of `WAVE` resources."""
    moment = start if start is not None else datetime(2026, 1, 1, tzinfo=UTC)
    previous, position = GENESIS, 0
    for first in range(0, resources, WAVE):
        wave = range(first, min(first + WAVE, resources))
        lanes = {n: _events(n, f"uid-{n:08x}") for n in wave}
        for version in range(1, RECORDS_PER_RESOURCE + 1):
            at = encode_at(moment)
            moment += STEP
            for number in wave:
                position += 1
                name = f"site-{number:05d}"
                row = make_row(
                    previous,
                    position=position,
                    stream=f"example.dev/Site/ns-{number % 20:02d}/{name}#uid-{number:08x}",
                    stream_version=version,
                    event=encode_event(lanes[number][version - 1]),
                    at=at,
                    term=1,
                )
                previous = row.checksum
                yield decode_row(row)
