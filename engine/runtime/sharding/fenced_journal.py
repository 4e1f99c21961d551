"""`ShardFencedJournal`: the journal as a sharded replica writes it. Every append to a
resource stream carries the fence `(shard, term)` of the stream's shard as this replica
holds it, so the database refuses it (`FencedOut`) once a newer owner has written that
shard; an append for a shard this replica does not hold is refused before it is sent
(`ShardNotHeld`). `term` is the term of the shard the running turn acts for (what the
effect records and the handler's `ctx.term` carry). Other streams pass through unfenced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Protocol

from engine.identity import StreamId
from engine.journal.batch import Fence
from engine.journal.errors import JournalError
from engine.journal.record import NewEvent, Record, Snapshot
from engine.journal.store import ANY_VERSION, Journal
from engine.runtime.sharding.scope import current_scope


class ShardNotHeld(JournalError):
    """An append for a shard this replica does not hold (it was handed off or lost)."""

    def __init__(self, stream: str, shard: str) -> None:
        super().__init__(
            f"stream {stream!r} is in shard {shard!r}, which this replica does not hold: "
            "its owner writes it"
        )
        self.shard = shard


class FencedStore(Protocol):
    """A journal whose `append` takes a `fence` (PostgreSQL, memory)."""

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int = ANY_VERSION,
        fence: Fence | None = None,
    ) -> tuple[int, ...]: ...


def key_of_stream(stream: str) -> str | None:
    """The queue key (`namespace/name`) of a resource stream; None for other streams."""
    parsed = StreamId.parse(stream)
    if not parsed.kind or not parsed.uid:
        return None
    return parsed.ref.key


class ShardFencedJournal:
    """Wraps `inner` (a journal that takes fences). `shard_of(key)` names a key's shard;
    `fence_of(shard)` the fence this replica holds it with, or None when it does not."""

    def __init__(
        self,
        inner: Journal,
        *,
        shard_of: Callable[[str], str],
        fence_of: Callable[[str], Fence | None],
    ) -> None:
        self.inner = inner
        self._fenced: FencedStore = inner  # type: ignore[assignment]
        self._shard_of, self._fence_of = shard_of, fence_of

    @property
    def term(self) -> int:
        scope = current_scope()
        return scope.term if scope is not None else self.inner.term

    @property
    def redacted_paths(self) -> tuple[str, ...]:
        return tuple(getattr(self.inner, "redacted_paths", ()))

    def set_term(self, term: int) -> None:
        self.inner.set_term(term)

    async def append(
        self, stream: str, events: Sequence[NewEvent], *, expected_version: int = ANY_VERSION
    ) -> tuple[int, ...]:
        """Append under the fence of the stream's shard. Errors: `ShardNotHeld`,
        `FencedOut`, and the inner journal's."""
        key = key_of_stream(stream)
        if key is None:
            return await self.inner.append(stream, events, expected_version=expected_version)
        shard = self._shard_of(key)
        fence = self._fence_of(shard)
        if fence is None:
            raise ShardNotHeld(stream, shard)
        return await self.append_fenced(stream, events, fence, expected_version=expected_version)

    async def append_fenced(
        self,
        stream: str,
        events: Sequence[NewEvent],
        fence: Fence,
        *,
        expected_version: int = ANY_VERSION,
    ) -> tuple[int, ...]:
        """Append under `fence` as given (the shard records: acquired, released)."""
        return await self._fenced.append(
            stream, events, expected_version=expected_version, fence=fence
        )

    async def shard_term(self, shard: str) -> int:
        """The highest term recorded for `shard` (0 when none)."""
        reader: Any = self.inner
        return int(await reader.shard_term(shard))

    async def stream_version(self, stream: str) -> int:
        return await self.inner.stream_version(stream)

    async def read_stream(self, stream: str, from_version: int = 1) -> list[Record]:
        return await self.inner.read_stream(stream, from_version)

    def read_all(self, from_position: int = 1, *, batch_size: int = 1000) -> AsyncIterator[Record]:
        return self.inner.read_all(from_position, batch_size=batch_size)

    def subscribe(self, from_position: int = 1) -> AsyncIterator[Record]:
        return self.inner.subscribe(from_position)

    async def find_by_key(self, idempotency_key: str) -> Record | None:
        return await self.inner.find_by_key(idempotency_key)

    async def streams(self) -> list[str]:
        return await self.inner.streams()

    async def save_snapshot(self, stream: str, version: int, state: Mapping[str, Any]) -> None:
        await self.inner.save_snapshot(stream, version, state)

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        return await self.inner.load_snapshot(stream)

    async def close(self) -> None:
        await self.inner.close()
