"""Record encoding and the sha256 checksum chain, shared by every journal backend.

A record is stored as a `Row`: the same fields as `Record`, with `at` as ISO-8601 text
and `data` as canonical JSON text. Each row's checksum covers its content and the
previous row's checksum, so a flipped bit, a changed row and a missing row all show.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from engine.journal.errors import CorruptJournal
from engine.journal.record import NewEvent, Record
from engine.journal.row_decoder import checksum as stored_row_checksum
from engine.journal.row_decoder import decode_data

GENESIS = "0" * 64
"""The `previous checksum` of the record at position 1."""

REDACTED = "<redacted>"
"""What a redacted field's value is replaced by before the record is written."""

_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
"""One encoder for every call: `json.dumps` with options builds a new one each time."""
_CANONICAL_ASCII = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)
"""For a payload holding a lone surrogate (`"\\ud800"` in the API server's JSON), which
UTF-8 cannot carry: every non-ASCII character is then written as a `\\u` escape."""

_NONE = "\x01"
_SEPARATOR = "\x00"


class Row(NamedTuple):
    """A record as stored: column order of the SQLite table and of an export line."""

    position: int
    stream: str
    stream_version: int
    type: str
    schema: int
    at: str
    data: str
    idempotency_key: str | None
    trace_id: str | None
    span_id: str | None
    term: int
    checksum: str


class EncodedEvent(NamedTuple):
    """A `NewEvent` whose payload is already canonical JSON (encoded by the caller)."""

    type: str
    schema: int
    data: str
    idempotency_key: str | None
    trace_id: str | None
    span_id: str | None


def encode_json(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept, NaN refused.

    Decoding and re-encoding canonical JSON gives the same text, which is what lets an
    export carry `data` as an object and still verify on import. A payload with a lone
    surrogate is written all-ASCII (escapes), which decodes and re-encodes the same way.
    """
    text = _CANONICAL.encode(value)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return _CANONICAL_ASCII.encode(value)
    return text


def encode_at(at: datetime) -> str:
    """UTC ISO-8601 text with microseconds; a naive datetime is refused."""
    if at.tzinfo is None:
        raise ValueError(f"the clock returned a naive datetime {at!r}; return UTC-aware times")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _check_text(name: str, value: str | None) -> None:
    if value is not None and (_SEPARATOR in value or _NONE in value):
        raise ValueError(f"{name} {value!r} contains a control character \\x00 or \\x01")


def encode_event(event: NewEvent, *, redact: tuple[str, ...] = ()) -> EncodedEvent:
    """Validate and encode one event; `redact` paths are replaced by `REDACTED` first.

    Errors: `ValueError` for an empty type, a control character in a text field, or a
    payload that is not JSON-serialisable.
    """
    if not event.type:
        raise ValueError("an event needs a non-empty type")
    _check_text("event type", event.type)
    _check_text("idempotency key", event.idempotency_key)
    _check_text("trace id", event.trace_id)
    _check_text("span id", event.span_id)
    data = redact_paths(event.data, redact) if redact else event.data
    try:
        text = encode_json(data)
    except (TypeError, ValueError) as bad:
        raise ValueError(f"event {event.type!r} has a payload that is not JSON: {bad}") from None
    return EncodedEvent(
        event.type, event.schema, text, event.idempotency_key, event.trace_id, event.span_id
    )


_SCALARS: Final = frozenset({str, int, float, bool})


def redact_paths(data: Mapping[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `data` with every dotted path in `paths` replaced by `REDACTED`.

    A path matches wherever its keys form a chain of nested objects, at any depth and
    inside lists: `spec.password` matches `data["spec"]["password"]` and
    `data["object"]["spec"]["password"]` alike. A path that is absent changes nothing.
    """
    return _redact_mapping(data, _split_paths(paths))


@functools.lru_cache(maxsize=64)
def _split_paths(paths: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(path.split(".")) for path in paths)


def _redact_mapping(data: Mapping[str, Any], paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    out = {key: _redact_value(value, paths) for key, value in data.items()}
    for path in paths:
        _replace_at(out, path)
    return out


def _redact_value(value: Any, paths: tuple[tuple[str, ...], ...]) -> Any:
    if value is None or type(value) in _SCALARS:
        return value  # the common case, without the slower abstract-class check
    if isinstance(value, Mapping):
        return _redact_mapping(value, paths)
    if isinstance(value, list | tuple):
        return [_redact_value(item, paths) for item in value]
    return value


def _replace_at(data: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = data
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        node = node[key]
    if isinstance(node, dict) and path[-1] in node:
        node[path[-1]] = REDACTED


def checksum(
    previous: str,
    *,
    position: int,
    stream: str,
    stream_version: int,
    event: EncodedEvent,
    at: str,
    term: int,
) -> str:
    """The chained checksum of a record that follows a record whose checksum is `previous`."""
    return _digest(
        previous,
        position,
        stream,
        stream_version,
        event.type,
        event.schema,
        at,
        event.data,
        event.idempotency_key,
        event.trace_id,
        event.span_id,
        term,
    )


def _digest(
    previous: str,
    position: int,
    stream: str,
    stream_version: int,
    type_: str,
    schema: int,
    at: str,
    data: str,
    key: str | None,
    trace_id: str | None,
    span_id: str | None,
    term: int,
) -> str:
    return stored_row_checksum(
        previous,
        (position, stream, stream_version, type_, schema, at, data, key, trace_id, span_id, term),
    )


def row_checksum(previous: str, row: Row) -> str:
    """Recompute `row`'s checksum from its stored content and the previous checksum."""
    return _digest(previous, *row[:-1])


def make_row(
    previous: str,
    *,
    position: int,
    stream: str,
    stream_version: int,
    event: EncodedEvent,
    at: str,
    term: int,
) -> Row:
    """Build the stored row of `event`, chained after `previous`."""
    digest = checksum(
        previous,
        position=position,
        stream=stream,
        stream_version=stream_version,
        event=event,
        at=at,
        term=term,
    )
    return Row(
        position,
        stream,
        stream_version,
        event.type,
        event.schema,
        at,
        event.data,
        event.idempotency_key,
        event.trace_id,
        event.span_id,
        term,
        digest,
    )


def verified_record(where: str, previous: str, row: Row | tuple[Any, ...]) -> Record:
    """Decode `row` after checking its checksum against `previous`.

    Errors: `CorruptJournal` naming `where` (the journal) and the row's position.
    """
    if _digest(previous, *row[:-1]) != row[-1]:
        raise CorruptJournal(where, "the record's checksum does not match", row[0])
    try:
        return decode_row(row)
    except ValueError as bad:
        raise CorruptJournal(where, f"the record does not decode ({bad})", row[0]) from None


def decode_row(row: Row | tuple[Any, ...]) -> Record:
    """The `Record` of a stored row (no checksum check: see `verified_record`)."""
    return Record(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        datetime.fromisoformat(row[5]),
        decode_data(row[6]),
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
    )


def row_of(record: Record) -> Row:
    """The stored row of a decoded record (for export and import)."""
    return Row(
        record.position,
        record.stream,
        record.stream_version,
        record.type,
        record.schema,
        encode_at(record.at),
        encode_json(record.data),
        record.idempotency_key,
        record.trace_id,
        record.span_id,
        record.term,
        record.checksum,
    )


def record_to_json(record: Record) -> dict[str, Any]:
    """One export line's object: every column, `at` as text, `data` as an object."""
    return {
        "position": record.position,
        "stream": record.stream,
        "stream_version": record.stream_version,
        "type": record.type,
        "schema": record.schema,
        "at": encode_at(record.at),
        "data": record.data,
        "idempotency_key": record.idempotency_key,
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "term": record.term,
        "checksum": record.checksum,
    }


def record_from_json(obj: Mapping[str, Any]) -> Record:
    """The inverse of `record_to_json`; `KeyError`/`TypeError`/`ValueError` on a bad line."""
    return Record(
        position=int(obj["position"]),
        stream=str(obj["stream"]),
        stream_version=int(obj["stream_version"]),
        type=str(obj["type"]),
        schema=int(obj["schema"]),
        at=datetime.fromisoformat(str(obj["at"])),
        data=dict(obj["data"]),
        idempotency_key=obj["idempotency_key"],
        trace_id=obj["trace_id"],
        span_id=obj["span_id"],
        term=int(obj["term"]),
        checksum=str(obj["checksum"]),
    )


def snapshot_checksum(stream: str, version: int, state: str) -> str:
    """The checksum of a stored snapshot (its stream, version and state text)."""
    text = _SEPARATOR.join((stream, str(version), state))
    return hashlib.sha256(text.encode()).hexdigest()
