"""The timeline as one JSON document (sorted keys, indent 1), for scripts and diffs.

Written piece by piece, one resource at a time, so a large replay is never held as one
document; the bytes are those of `json.dumps(..., sort_keys=True, indent=1,
ensure_ascii=False)` over `timelines_json`, which stays the reference shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring
from typing import Any

from engine.replay.timeline import StreamTimeline, TimelineRow

FORMAT = "engine-replay"
VERSION = 1


def row_json(row: TimelineRow) -> dict[str, Any]:
    """One row as a JSON object; absent facts are null."""
    return {
        "position": row.position,
        "version": row.version,
        "at": row.at,
        "event": row.event,
        "from": row.source,
        "to": row.dest,
        "trigger": row.trigger,
        "effect": row.effect,
        "key": row.key,
        "attempt": row.attempt,
        "outcome": row.outcome,
        "trace_id": row.trace_id,
    }


def resource_json(timeline: StreamTimeline) -> dict[str, Any]:
    """One resource's timeline as a JSON-ready mapping."""
    resource = timeline.resource
    return {
        "stream": resource.stream,
        "group": resource.group,
        "kind": resource.kind,
        "namespace": resource.namespace,
        "name": resource.name,
        "uid": resource.uid,
        "state": timeline.state.state,
        "generation": timeline.state.generation,
        "records": timeline.records,
        "rows": [row_json(row) for row in timeline.rows],
    }


def timelines_json(timelines: tuple[StreamTimeline, ...]) -> dict[str, Any]:
    """The whole replay as a JSON-ready mapping."""
    resources = [resource_json(timeline) for timeline in timelines]
    return {"format": FORMAT, "version": VERSION, "resources": resources}


def _value(value: Any) -> str:
    """One scalar as `json.dumps` writes it (strings unescaped beyond JSON's needs)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return encode_basestring(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    return json.dumps(value, ensure_ascii=False)


def _row_text(row: TimelineRow) -> str:
    # each field's type is known (`TimelineRow`), so each goes straight to its encoder;
    # one f-string, keys in sorted order, as `json.dumps(sort_keys=True, indent=1)` nests
    # a row four levels deep
    text = encode_basestring
    attempt, effect, key = row.attempt, row.effect, row.key
    trace, trigger = row.trace_id, row.trigger
    return (
        f'    {{\n     "at": {text(row.at)},\n'
        f'     "attempt": {"null" if attempt is None else int.__repr__(attempt)},\n'
        f'     "effect": {"null" if effect is None else text(effect)},\n'
        f'     "event": {text(row.event)},\n'
        f'     "from": {text(row.source)},\n'
        f'     "key": {"null" if key is None else text(key)},\n'
        f'     "outcome": {text(row.outcome)},\n'
        f'     "position": {int.__repr__(row.position)},\n'
        f'     "to": {text(row.dest)},\n'
        f'     "trace_id": {"null" if trace is None else text(trace)},\n'
        f'     "trigger": {"null" if trigger is None else text(trigger)},\n'
        f'     "version": {int.__repr__(row.version)}\n    }}'
    )


def _resource_text(timeline: StreamTimeline) -> str:
    resource = timeline.resource
    if timeline.rows:
        rows = "[\n" + ",\n".join([_row_text(row) for row in timeline.rows]) + "\n   ]"
    else:
        rows = "[]"
    fields = (
        ("generation", _value(timeline.state.generation)),
        ("group", _value(resource.group)),
        ("kind", _value(resource.kind)),
        ("name", _value(resource.name)),
        ("namespace", _value(resource.namespace)),
        ("records", _value(timeline.records)),
        ("rows", rows),
        ("state", _value(timeline.state.state)),
        ("stream", _value(resource.stream)),
        ("uid", _value(resource.uid)),
    )
    return "  {\n" + ",\n".join(f'   "{name}": {text}' for name, text in fields) + "\n  }"


def resources_text(timelines: Iterable[StreamTimeline]) -> str:
    """Consecutive resources of the document, as one piece for `json_document` (empty
    for none)."""
    return ",\n".join([_resource_text(timeline) for timeline in timelines])


_HEAD = f'{{\n "format": {_value(FORMAT)},\n "resources": ['
_TAIL = f' "version": {_value(VERSION)}\n}}\n'


def json_document(pieces: Iterable[str]) -> Iterator[str]:
    """The document around `pieces` of consecutive resources (`resources_text`; an
    empty piece adds nothing), in order, to write out as they come."""
    yield _HEAD
    first = True
    for piece in pieces:
        if piece:
            yield ("\n" if first else ",\n") + piece
            first = False
    yield ("],\n" if first else "\n ],\n") + _TAIL


def json_document_utf8(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """`json_document` over pieces already encoded as UTF-8 (a worker's, see
    `engine.replay.chunked`), in UTF-8: the same bytes, nothing decoded."""
    yield _HEAD.encode()
    first = True
    for piece in pieces:
        if piece:
            yield b"\n" + piece if first else b",\n" + piece
            first = False
    yield (b"],\n" if first else b"\n ],\n") + _TAIL.encode()


def json_chunks(timelines: Iterable[StreamTimeline]) -> Iterator[str]:
    """The document of `render_json` in pieces (about one per resource), to write out
    as they come."""
    return json_document(_resource_text(timeline) for timeline in timelines)


def render_json(timelines: tuple[StreamTimeline, ...]) -> str:
    """The replay as indented JSON text with sorted keys and a final newline."""
    return "".join(json_chunks(timelines))
