"""Which shard the running code acts for: set by the sharded handler around one key's
turn, read by the fenced journal (the term records and effects carry) and by handlers
that pass the fence on to an external target."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ShardScope:
    """The shard of the key being reconciled and the term this replica holds it with."""

    shard: str
    term: int


_current: contextvars.ContextVar[ShardScope | None] = contextvars.ContextVar(
    "engine_shard_scope", default=None
)


def current_scope() -> ShardScope | None:
    """The shard and term of the key this task reconciles; None outside a sharded turn."""
    return _current.get()


def enter_scope(scope: ShardScope) -> contextvars.Token[ShardScope | None]:
    """Act for `scope` in this task (and the tasks it starts) until `leave_scope`."""
    return _current.set(scope)


def leave_scope(token: contextvars.Token[ShardScope | None]) -> None:
    _current.reset(token)
