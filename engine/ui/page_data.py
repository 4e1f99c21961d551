"""What the page's script reads: each lane as JSON (its server-drawn SVG inside), the
deadlocks, and the records behind the shapes; the same shapes the SSE stream pushes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from engine.journal.codec import encode_at
from engine.journal.record import Record
from engine.ui.lane_svg import HANDLERS
from engine.ui.lanes import Lane
from engine.ui.picture import Picture

DETAIL_LIMIT = 20_000
"""Journals up to this many records carry every record in the page (for the details
panel); larger ones show the shape's own summary (and, live, fetch the record)."""


def _t(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 4)


def lane_json(lane: Lane) -> dict[str, Any]:
    """One lane for the script: filter facts, and what its track draws, as compact
    arrays (the script draws them as `lane_svg.lane_fragment` does):
    spans `[state, start, end|null, position]`, attempts `[upper, start, end|null,
    outcome, position, attempt, retry delay|null, name, message]`, marks
    `[kind, at, position, text]`."""
    attempts = [
        [
            int(a.name in HANDLERS), _t(a.start), _t(a.end), a.outcome,
            a.end_position if a.end_position is not None else a.position,
            a.attempt, _t(a.retry_delay), a.name, a.message,
        ]
        for a in lane.attempts
    ]  # fmt: skip
    # label, namespace, name, states and outcomes the script derives from these
    return {
        "id": lane.resource.stream,
        "state": lane.state,
        "records": lane.records,
        "waits": [[w.at, w.target, w.position] for w in lane.waits],
        "last_at": _t(lane.last_at),
        "spans": [[s.state, _t(s.start), _t(s.end), s.position] for s in lane.spans],
        "attempts": attempts,
        "marks": [[m.kind, _t(m.at), m.position, m.text] for m in lane.markers],
    }


def record_json(record: Record) -> dict[str, Any]:
    """A record as the details panel shows it (the journal's own, already redacted)."""
    return {
        "position": record.position,
        "stream": record.stream,
        "version": record.stream_version,
        "type": record.type,
        "at": encode_at(record.at),
        "data": record.data,
        "idempotency_key": record.idempotency_key,
        "trace_id": record.trace_id,
        "term": record.term,
    }


def picture_json(
    picture: Picture,
    lanes: Sequence[Lane],
    records: Iterable[Record] | None,
    *,
    live: bool,
    jaeger_url: str | None,
) -> dict[str, Any]:
    """The whole document the script starts from."""
    origin = picture.origin.timestamp() * 1000 if picture.origin is not None else 0.0
    return {
        "origin_ms": origin,
        "end": picture.end,
        "last_position": picture.last_position,
        "records": picture.records,
        "live": live,
        "jaeger_url": jaeger_url,
        "lanes": [lane_json(lane) for lane in lanes],
        "deadlocks": deadlocks_json(picture),
        "details": {} if records is None else {r.position: record_json(r) for r in records},
    }


def deadlocks_json(picture: Picture) -> list[dict[str, Any]]:
    """The deadlocks: time, position and cycle members (`ns/name`, in wait order)."""
    return [{"at": d.at, "position": d.position, "cycle": list(d.cycle)} for d in picture.deadlocks]


def script_json(document: Any) -> str:
    """JSON safe inside a `<script>` element: no `<` at all, so neither `</script>` nor
    `<!--` can change how the HTML parser reads it (the lanes' data holds few)."""
    return json.dumps(document, separators=(",", ":"), default=str).replace("<", "\\u003c")
