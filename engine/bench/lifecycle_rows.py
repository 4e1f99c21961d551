"""Realistic, foldable journal rows for replay benchmarks: many resources, each going
Pending → Provisioning → Ready → Finalizing → Deleted through the event builders of
`engine.fsm.events`, interleaved across resources as a live engine writes them.

Shaped like the example operator's journal: 11 records per lifecycle, and a status echo
(`Observed` of the Ready status) for every second resource, so 11.5 records and about
5.5 KB of stored row text per resource on average.

The events of one lifecycle are built and encoded once, with placeholders for the
resource's name and uid; each resource then costs a text substitution and a checksum
per row, so a million rows take seconds to make.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from engine.fsm import events as ev
from engine.fsm.observation import Observation
from engine.journal.codec import GENESIS, EncodedEvent, Row, encode_at, encode_event, make_row
from engine.journal.record import NewEvent

_NAME = "NAME-PLACEHOLDER"
_UID = "UID-PLACEHOLDER"
WAVE = 500
"""Resources whose records interleave (round-robin), as concurrent reconciles do."""
_SPEC = {
    "domain": f"{_NAME}.example.com",
    "replicas": 3,
    "image": "registry.example.com/web/site:1.24.3",
    "tier": "standard",
    "storage": {"size": "10Gi", "class": "fast-ssd"},
    "resources": {"cpu": "500m", "memory": "512Mi"},
    "tls": {"issuer": "letsencrypt-production", "secretName": f"{_NAME}-tls"},
    "labels": {"team": "web", "cost-center": "cc-1042", "environment": "production"},
    "annotations": {"example.com/owner": "web-platform@example.com", "example.com/rev": "r-2041"},
}


def _observed(version: int, **changes: object) -> NewEvent:
    fields: dict[str, object] = {
        "uid": _UID,
        "generation": 1,
        "resource_version": str(100 + version),
        "spec_digest": "59676135926f57114b3b082c69128a7f8fed779ca25c0893ebc9ad661faedbda",
        "has_finalizer": version > 1,
        **changes,
    }
    obs = Observation(**fields)  # type: ignore[arg-type]
    return ev.observed(obs, watch_event="ADDED" if version == 1 else "MODIFIED", spec=_SPEC)


def lifecycle_events(*, echo: bool = False) -> list[NewEvent]:
    """One resource's events from creation to deletion (11; 12 with the status `echo`),
    with placeholders for its name and uid."""
    prefix = f"{_UID}:1:"
    ready = {
        "url": f"https://{_NAME}.example.com",
        "deployment": f"{_NAME}-web",
        "service": f"{_NAME}-svc",
        "certificate": f"{_NAME}-tls",
    }
    echoed = [_observed(2, status_phase="Ready", status_observed_generation=1)] if echo else []
    return [
        _observed(1),
        ev.transition_taken(
            source="Pending", dest="Provisioning", trigger="observed_live", generation=1
        ),
        ev.effect_started(key=prefix + "provision", name="provision", attempt=1, term=1),
        ev.effect_succeeded(
            key=prefix + "provision", name="provision", attempt=1, result=ready, seconds=0.031
        ),
        ev.transition_taken(
            source="Provisioning", dest="Ready", trigger="provisioned", generation=1
        ),
        ev.status_written(phase="Ready", observed_generation=1, reason=None),
        *echoed,
        _observed(3, deletion_requested=True, status_phase="Ready", status_observed_generation=1),
        ev.transition_taken(
            source="Ready", dest="Finalizing", trigger="deletion_requested", generation=1
        ),
        ev.effect_started(key=prefix + "finalize", name="finalize", attempt=1, term=1),
        ev.effect_succeeded(
            key=prefix + "finalize", name="finalize", attempt=1, result=None, seconds=0.02
        ),
        ev.transition_taken(source="Finalizing", dest="Deleted", trigger="finalized", generation=1),
    ]


def _for_resource(template: EncodedEvent, name: str, uid: str, position: int) -> EncodedEvent:
    key = template.idempotency_key
    return template._replace(
        data=template.data.replace(_UID, uid).replace(_NAME, name),
        idempotency_key=None if key is None else key.replace(_UID, uid),
        trace_id=f"{position:032x}",
        span_id=f"{position:016x}",
    )


def lifecycle_rows(count: int, *, start: datetime | None = None, wave: int = WAVE) -> Iterator[Row]:
    """`count` chained rows: whole lifecycles of resources `site-000000`, … in waves of
    `wave` interleaved resources (the last lifecycles may be cut off at `count`)."""
    plain = [encode_event(event) for event in lifecycle_events()]
    echoed = [encode_event(event) for event in lifecycle_events(echo=True)]
    moment = start if start is not None else datetime(2026, 1, 1, tzinfo=UTC)
    tick = timedelta(milliseconds=1)
    previous = GENESIS
    position = 0
    first = 0
    while position < count:
        numbers = range(first, first + wave)
        for step in range(len(echoed)):
            at = encode_at(moment)
            moment += tick
            for number in numbers:
                templates = echoed if number % 2 == 0 else plain
                if step >= len(templates):
                    continue
                if position >= count:
                    return
                name, uid = f"site-{number:06d}", f"uid-{number:08x}-5a1e"
                position += 1
                row = make_row(
                    previous,
                    position=position,
                    stream=f"example.com/Site/default/{name}#{uid}",
                    stream_version=step + 1,
                    event=_for_resource(templates[step], name, uid, position),
                    at=at,
                    term=1,
                )
                previous = row.checksum
                yield row
        first += wave
