"""The journal's two record shapes: an event to append, and a committed record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.identity import StreamId


def stream_name(*, group: str, kind: str, namespace: str, name: str, uid: str) -> str:
    """The journal stream of one resource: `group/kind/namespace/name#uid`.

    The uid keeps a deleted-and-recreated object (same name, new uid) in its own stream.
    A cluster-scoped resource uses an empty namespace.
    """
    return str(StreamId(group, kind, namespace, name, uid))


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event a caller asks the journal to append.

    `data` must be JSON-serialisable. `idempotency_key`, when set, is unique across the
    whole journal: appending a second event with the same key writes nothing and answers
    with the existing record's position.
    """

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)
    schema: int = 1
    idempotency_key: str | None = None
    trace_id: str | None = None
    span_id: str | None = None


@dataclass(frozen=True)
class Record:
    """A committed journal record (docs/journal.md describes every column).

    Its fields live in an instance dict (no slots), so a reader of a whole journal can
    make one by setting that dict in one step (`engine.journal.row_decoder`)."""

    position: int
    stream: str
    stream_version: int
    type: str
    schema: int
    at: datetime
    data: Mapping[str, Any]
    idempotency_key: str | None
    trace_id: str | None
    span_id: str | None
    term: int
    checksum: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The folded state of a stream as of `version`, so a fold need not start at zero."""

    stream: str
    version: int
    state: Mapping[str, Any]
