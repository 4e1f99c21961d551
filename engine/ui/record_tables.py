"""The record tables under the picture: every record of each lane's stream, one row
each, so the page reads without script (each row has the anchor the shapes link to)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import quote

from engine.fsm import events as ev
from engine.fsm.fold import apply
from engine.fsm.state import ResourceState
from engine.journal.codec import encode_at
from engine.journal.record import Record
from engine.ui.lanes import Lane

HEADERS = ("time", "pos", "event", "from → to", "effect", "att", "outcome", "trace")


def jaeger_link(trace_id: str, jaeger_url: str | None) -> str:
    """The trace id as code, linked to `URL/trace/<id>` when a Jaeger URL is given."""
    text = f"<code>{escape(trace_id)}</code>"
    if not jaeger_url:
        return text
    href = f"{jaeger_url.rstrip('/')}/trace/{quote(trace_id, safe='')}"
    return f'<a href="{escape(href, quote=True)}">{text}</a>'


def _outcome(record: Record) -> tuple[str, str, str]:
    """(effect, attempt, outcome) cells for one record."""
    data = record.data
    if record.type in ev.EFFECT_TYPES:
        fact = ev.parse_effect(record)
        attempt = str(fact.attempt)
        if fact.type == ev.EFFECT_STARTED:
            return fact.name, attempt, "started"
        if fact.type == ev.EFFECT_SUCCEEDED:
            return fact.name, attempt, "succeeded"
        if fact.type == ev.RETRY_SCHEDULED:
            return "", attempt, f"retry in {fact.delay:.3f}s"
        kind = (
            "waiting"
            if fact.waiting
            else "gave up"
            if fact.gave_up
            else ("retryable" if fact.retryable else "permanent")
        )
        return fact.name, attempt, f"failed ({kind}): {fact.error_class}: {fact.message}"
    if record.type == ev.TRANSITION_TAKEN:
        return "", "", str(data.get("trigger"))
    if record.type == ev.STATUS_WRITTEN:
        reason = f": {data.get('reason')}" if data.get("reason") else ""
        return "", "", f"status {data.get('phase')}{reason}"
    if record.type == ev.OBSERVED:
        return "", "", f"{data.get('watch_event')} gen {data.get('generation')}"
    if record.type == ev.DEADLOCK_DETECTED:
        return "", "", "wait-for cycle: " + " → ".join(str(s) for s in data.get("cycle") or ())
    return "", "", ", ".join(f"{k} {v}" for k, v in sorted(data.items()))[:200]


def _rows(records: Iterable[Record], jaeger_url: str | None) -> list[str]:
    rows: list[str] = []
    state = ResourceState()
    for record in records:
        before, state = state, apply(state, record)
        move = before.state if before.state == state.state else f"{before.state} → {state.state}"
        effect, attempt, outcome = _outcome(record)
        css = (
            "transition"
            if record.type == ev.TRANSITION_TAKEN
            else ("failed" if record.type == ev.EFFECT_FAILED else "")
        )
        trace = jaeger_link(record.trace_id, jaeger_url) if record.trace_id else ""
        rows.append(
            f'<tr id="rec-{record.position}" class="{css}">'
            f"<td><code>{escape(encode_at(record.at))}</code></td>"
            f'<td class="num">{record.position}</td><td>{escape(record.type)}</td>'
            f"<td>{escape(move)}</td><td>{escape(effect)}</td>"
            f'<td class="num">{attempt}</td><td>{escape(outcome)}</td><td>{trace}</td></tr>'
        )
    return rows


def record_tables(
    lanes: Sequence[Lane], records: Sequence[Record], *, jaeger_url: str | None
) -> str:
    """One table per lane (in the lanes' order) of every record of its stream."""
    by_stream: dict[str, list[Record]] = {}
    for record in records:
        by_stream.setdefault(record.stream, []).append(record)
    parts = []
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in HEADERS) + "</tr>"
    for i, lane in enumerate(lanes):
        resource = lane.resource
        parts.append(
            f'<section class="records" id="res-{i}"><h3>{escape(resource.label)} '
            f"<small>{escape(resource.kind)} <code>{escape(resource.uid)}</code></small> "
            f'<span class="state s-{escape(lane.state)}">{escape(lane.state)}</span></h3>'
            f"<table><thead>{head}</thead><tbody>"
            + "".join(_rows(by_stream.get(resource.stream, ()), jaeger_url))
            + "</tbody></table></section>"
        )
    return "".join(parts)
