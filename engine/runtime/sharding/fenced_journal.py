"""`ShardFencedJournal`: the journal as a sharded replica writes it. Every append to a
resource stream carries the fence `(shard, term)` of the stream's shard as this replica
holds it, so the database refuses it (`FencedOut`) once a newer owner has written that
shard; an append for a shard this replica does not hold is refused before it is sent
(`ShardNotHeld`). `term` is the term of the shard the running turn acts for (what the
effect records and the handler's `ctx.term` carry). Other streams pass through unfenced.

While this replica holds a shard it is the one writer of the shard's resource streams
(any older owner is fenced out from the commit of `ShardAcquired` on), so it keeps their
versions in memory, learned from its own commits and from reads made while it held the
shard, and answers `stream_version` and the tail read after its own append without a
round trip. `forget_shard` drops them at every acquisition, loss and release of the
shard; a read that overlapped one of those, or an append to the same stream, is not
kept.
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
        self._versions: dict[str, tuple[str, int]] = {}  # stream -> (shard, version)
        self._epochs: dict[str, int] = {}  # shard -> handoffs seen (acquired, lost, released)
        self._writes: dict[str, int] = {}  # stream -> appends begun
        inner_any: Any = inner
        self._committed_version: Callable[[str], int | None] | None = getattr(
            inner_any, "committed_version", None
        )
        self._recent_tail: Callable[[str, int, int], list[Record] | None] | None = getattr(
            inner_any, "recent_tail", None
        )

    def forget_shard(self, shard: str) -> None:
        """Drop the versions kept for `shard`'s streams (its owner changed, or may have)."""
        self._epochs[shard] = self._epochs.get(shard, 0) + 1
        for stream in [s for s, (owner, _) in self._versions.items() if owner == shard]:
            del self._versions[stream]

    def _held_shard(self, stream: str) -> str | None:
        """The shard of resource stream `stream` when this replica holds it, else None."""
        key = key_of_stream(stream)
        if key is None:
            return None
        shard = self._shard_of(key)
        return shard if self._fence_of(shard) is not None else None

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
        epoch = self._epochs.get(shard, 0)
        self._writes[stream] = self._writes.get(stream, 0) + 1
        self._versions.pop(stream, None)  # known again once the commit answers
        positions = await self.append_fenced(
            stream, events, fence, expected_version=expected_version
        )
        version = self._committed_version(stream) if self._committed_version else None
        if version is not None and self._epochs.get(shard, 0) == epoch:
            self._versions[stream] = (shard, version)
        return positions

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
        known = self._versions.get(stream)
        if known is not None:
            return known[1]
        shard = self._held_shard(stream)
        if shard is None:
            return await self.inner.stream_version(stream)
        epoch, writes = self._epochs.get(shard, 0), self._writes.get(stream, 0)
        version = await self.inner.stream_version(stream)
        unchanged = self._epochs.get(shard, 0) == epoch and self._writes.get(stream, 0) == writes
        if unchanged and self._held_shard(stream) == shard:
            self._versions[stream] = (shard, version)
        return version

    async def read_stream(self, stream: str, from_version: int = 1) -> list[Record]:
        known = self._versions.get(stream)
        if known is not None and self._recent_tail is not None:
            if from_version > known[1]:
                return []
            tail = self._recent_tail(stream, from_version, known[1])
            if tail is not None:
                return tail
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
