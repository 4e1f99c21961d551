"""The engine started on its own journal damaged while it was down (J2 the last 1000
bytes cut off, J5 the header's magic overwritten, J6 a page in the middle zeroed): each
is quarantined as J1 is (the files renamed aside and kept as they were, a Warning Event,
`engine_journal_quarantined_total 1`), the engine starts on a fresh journal, a widget
created while it was down converges and `/readyz` answers 200.

The journal is the engine's own, of 12 widgets (about 30 pages), so a cut or a zeroed
page lands in a page the open itself does not read: only SQLite's quick_check at the
start finds it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from engine.journal.chain_check import check_journal
from engine.journal.errors import CorruptJournal, NotAJournal
from engine.journal.sqlite import SqliteJournal
from tests.integration.reconcile_support import (
    Api,
    ExternalService,
    eventually,
    fast_settings,
)
from tests.integration.test_journal_quarantine import _cluster, _phase, _run

PAGE = 4096
WIDGETS = 12


def _cut_the_tail(path: Path) -> None:
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size - 1000)


def _damage_the_magic(path: Path) -> None:
    with path.open("r+b") as file:
        file.write(b"garbage!")


def _zero_a_middle_page(path: Path) -> None:
    pages = path.stat().st_size // PAGE
    with path.open("r+b") as file:
        file.seek((pages // 2) * PAGE)
        file.write(b"\0" * PAGE)


DAMAGES: dict[str, Callable[[Path], None]] = {
    "J2-tail-cut-by-1000-bytes": _cut_the_tail,
    "J5-header-magic": _damage_the_magic,
    "J6-a-page-zeroed": _zero_a_middle_page,
}


async def _first_run(api: Api, kubeconfig: Path, journal: Path) -> None:
    """The engine until `WIDGETS` widgets are Ready, stopped cleanly (checkpointed)."""
    controller, task = await _run(kubeconfig, fast_settings(journal.parent), journal,
                                  ExternalService())  # fmt: skip
    names = [f"w{n:02d}" for n in range(WIDGETS)]
    for name in names:
        await api.create_widget(name, size=1)

    async def ready() -> bool:
        phases = await asyncio.gather(*(_phase(api, name) for name in names))
        return all(phase == "Ready" for phase in phases)

    await eventually(ready, "every widget is Ready")
    await controller.stop()
    await task


async def _verify(journal: Path) -> int:
    opened = await SqliteJournal.open(journal, readonly=True)
    try:
        return await opened.verify()
    finally:
        await opened.close()


@pytest.mark.parametrize("damage", list(DAMAGES))
async def test_the_engine_quarantines_a_damaged_journal_rebuilds_and_gets_ready(
    tmp_path: Path, damage: str
) -> None:
    journal = tmp_path / "state" / "journal.db"
    async with _cluster(tmp_path) as (api, kubeconfig):
        await _first_run(api, kubeconfig, journal)
        assert not journal.with_name("journal.db-wal").exists()  # all of it in the file
        DAMAGES[damage](journal)
        damaged = journal.read_bytes()
        with pytest.raises((CorruptJournal, NotAJournal)):
            await _verify(journal)  # a full check sees it: the start must too
        await api.create_widget("after", size=2)  # while the engine is down

        controller, task = await _run(
            kubeconfig, fast_settings(journal.parent), journal, ExternalService()
        )
        try:
            await asyncio.wait_for(controller.ready.wait(), 15)

            async def converged() -> bool:
                return await _phase(api, "after") == "Ready"

            await eventually(converged, "widget after converges on the fresh journal")
            assert controller.health_url is not None
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{controller.health_url}/readyz") as answer:
                    assert (answer.status, await answer.text()) == (200, "ok\n")
                async with http.get(f"{controller.health_url}/metrics") as answer:
                    assert "engine_journal_quarantined_total 1.0" in await answer.text()
            events = await api.get("/api/v1/namespaces/default/events")
            assert events is not None
            warnings = [e for e in events["items"] if e["reason"] == "JournalQuarantined"]
            assert [w["type"] for w in warnings] == ["Warning"]
        finally:
            await controller.stop()
            await task
    kept = sorted(p.name for p in journal.parent.iterdir() if ".corrupt-" in p.name)
    assert kept, "nothing quarantined"
    assert kept[0].startswith("journal.db.corrupt-"), kept
    assert (journal.parent / kept[0]).read_bytes() == damaged  # kept as it was
    assert check_journal(journal).records > 0  # the fresh journal holds the rebuilt run
