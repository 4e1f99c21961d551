"""The sharded replica's watch sink: a key of a shard not held is kept in the view only,
as the watch delivered it, so once its shard is acquired its next change is journaled
and enqueued (a key kept through the write-answer path awaited that version, and every
later watch event of it lost to the stale entry); a held key's changes are journaled in
order, each before the key is enqueued, without holding the watch."""

from __future__ import annotations

from typing import Any

from engine.bench.shard_operator import CHORE, OPERATOR
from engine.fsm import events as ev
from engine.journal.memory import MemoryJournal
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.objects import PrimaryView
from engine.runtime.reconcile.observations import ObservationLog, Observer, ObserverDeps
from engine.runtime.reconcile.streams import StreamWriter
from engine.runtime.sharding.observer import ShardedObserver
from engine.watchers import Change, ChangeOrigin, ChangeType
from tests.support.chores import chore

KEY = "default/c-1"


def change(obj: dict[str, Any], kind: ChangeType = ChangeType.MODIFIED) -> Change:
    return Change(kind, ChangeOrigin.WATCH, CHORE.kind_ref, obj, None, {})  # type: ignore[arg-type]


class Sinks:
    def __init__(self) -> None:
        self.journal = MemoryJournal()
        ledger = ChildLedger()
        self.view = PrimaryView()
        self.enqueued: list[str] = []
        self.held: set[str] = set()
        observer = Observer(
            ObserverDeps(
                operator=OPERATOR,
                view=self.view,
                ledger=ledger,
                log=ObservationLog(StreamWriter(self.journal, ledger=ledger)),
                enqueue=self.enqueued.append,
            )
        )
        self.sink = ShardedObserver(observer, view=self.view, owns_key=self.held.__contains__)

    async def observed_generations(self) -> list[int]:
        generations = []
        for stream in await self.journal.streams():
            for record in await self.journal.read_stream(stream):
                if record.type == ev.OBSERVED:
                    generations.append(ev.parse_observation(record).generation)
        return generations


async def test_a_key_kept_while_its_shard_was_elsewhere_is_journaled_once_acquired() -> None:
    sinks = Sinks()
    await sinks.sink.primary(change(chore(1, 1), ChangeType.ADDED))
    await sinks.sink.primary(change(chore(2, 1)))
    entry = sinks.view.get(KEY)
    assert entry is not None
    assert entry.obj["metadata"]["resourceVersion"] == "2"
    assert await sinks.observed_generations() == []
    assert sinks.enqueued == []

    sinks.held.add(KEY)  # the shard is acquired
    await sinks.sink.primary(change(chore(3, 2)))
    await sinks.sink.stop()
    entry = sinks.view.get(KEY)
    assert entry is not None
    assert entry.obj["metadata"]["resourceVersion"] == "3", "the new change is in the view"
    assert await sinks.observed_generations() == [2]
    assert sinks.enqueued == [KEY]


async def test_a_held_keys_changes_are_journaled_in_order_each_before_its_enqueue() -> None:
    sinks = Sinks()
    sinks.held.add(KEY)
    await sinks.sink.primary(change(chore(1, 1), ChangeType.ADDED))
    for version in range(2, 6):
        await sinks.sink.primary(change(chore(version, version)))
    assert sinks.sink.pending() == 1, "the watch was not held: the key's chain still runs"
    await sinks.sink.stop()
    assert await sinks.observed_generations() == [1, 2, 3, 4, 5]
    assert sinks.enqueued == [KEY] * 5
    assert sinks.sink.pending() == 0
