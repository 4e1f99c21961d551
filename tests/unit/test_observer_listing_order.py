"""A listing is journaled before the view holds it: the check of a listed object against
the journal (`ObservationLog.behind`, a fold that waits on the journal) runs first, so a
reconcile reading the view never journals a listed change ahead of the watch's own
observation of it (replay feeds its view only from the watch's journaled observations,
so a reconcile's observation of a change the watch journaled after it would diverge)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.bench.shard_operator import CHORE, OPERATOR
from engine.clock import FakeClock
from engine.fsm import events as ev
from engine.fsm.observation import Observation
from engine.identity import StreamId
from engine.journal.sqlite import SqliteJournal
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.objects import PrimaryView, resource_version
from engine.runtime.reconcile.observations import (
    ObservationLog,
    Observer,
    ObserverDeps,
    observation_of,
)
from engine.runtime.reconcile.streams import StreamWriter
from engine.watchers import Change, ChangeOrigin, ChangeType
from tests.support.chores import chore

KEY = "default/c-1"


async def test_a_reconcile_reading_the_view_journals_after_the_listing(tmp_path: Path) -> None:
    journal = await SqliteJournal.open(tmp_path / "journal.db", clock=FakeClock())
    try:
        stream = str(StreamId.of(CHORE.kind_ref, chore(1, 1)))
        first = Observation(uid="u-1", generation=1, resource_version="1")
        await journal.append(stream, [ev.observed(first, watch_event="added", spec={})])

        # a new process on the same journal: nothing folded, no observation known
        ledger = ChildLedger()
        view = PrimaryView()
        log = ObservationLog(StreamWriter(journal, ledger=ledger))
        observer = Observer(
            ObserverDeps(operator=OPERATOR, view=view, ledger=ledger, log=log, enqueue=print)
        )
        listed = Change(
            ChangeType.ADDED,
            ChangeOrigin.RELIST,
            CHORE.kind_ref,
            chore(5, 2),
            None,
            {},  # type: ignore[arg-type]
        )

        async def reconcile_on_sight() -> int:
            """A reconcile pass that starts the moment the view holds the listing; how
            many loop turns it waited."""
            turns = 0
            while (entry := view.get(KEY)) is None or resource_version(entry.obj) != "5":
                turns += 1
                await asyncio.sleep(0)
            seen = observation_of(entry, finalizer=OPERATOR.finalizer_name, child_drift=True)
            await log.record(stream, seen, spec=entry.obj["spec"], watch_event="reconcile")
            return turns

        reconcile = asyncio.create_task(reconcile_on_sight())
        await asyncio.sleep(0)  # it is waiting before the listing comes
        await observer.primary(listed)
        turns = await reconcile
        assert turns > 0, "the reconcile started before the listing"

        observed = [r for r in await journal.read_stream(stream) if r.type == ev.OBSERVED]
        assert [(r.data["watch_event"], r.data["resource_version"]) for r in observed] == [
            ("added", "1"),
            ("added", "5"),
            ("reconcile", "5"),
        ], "the watch's observation of the listing comes first"
    finally:
        await journal.close()
