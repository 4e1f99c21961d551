"""J1: the engine starts on a journal truncated to half its size. By default it renames
the journal aside (every file kept), reports it (a log line, a Warning Event, a metric),
starts on a fresh journal, rebuilds from cluster state, converges and is ready; with
`journal_corrupt = "refuse"` it refuses to start and leaves the file as it was."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from engine.apiserver.http.embedded import serve_apiserver
from engine.journal import NewEvent
from engine.journal.chain_check import check_journal
from engine.journal.errors import CorruptJournal, NotAJournal
from engine.journal.quarantine import quarantinable, quarantine
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.manager.settings import Settings
from engine.watchers import connect_kubeconfig
from tests.integration.reconcile_support import (
    Api,
    ExternalService,
    eventually,
    fast_settings,
    install_crd,
    widget_operator,
)

WIDGETS = "/apis/test.engine.dev/v1/namespaces/default/widgets"


@asynccontextmanager
async def _cluster(tmp_path: Path) -> AsyncIterator[tuple[Api, Path]]:
    async with (
        serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, server.url)
        await install_crd(api, widget_operator(ExternalService()))
        yield api, server.kubeconfig_path


async def _run(
    kubeconfig: Path, settings: Settings, journal: Path, service: ExternalService
) -> tuple[Controller, asyncio.Task[None]]:
    client = await connect_kubeconfig(kubeconfig)
    controller = Controller(
        ControllerDeps(
            operator=widget_operator(service),
            settings=settings,
            api_client=client,
            journal_path=journal,
            handle_signals=False,
        )
    )

    async def run() -> None:
        try:
            await controller.run()
        finally:
            await client.close()

    return controller, asyncio.create_task(run())


async def _phase(api: Api, name: str) -> str | None:
    widget = await api.get(f"{WIDGETS}/{name}")
    return None if widget is None else (widget.get("status") or {}).get("phase")


async def _first_run(api: Api, kubeconfig: Path, settings: Settings, journal: Path) -> None:
    """Run the engine until widget "before" is Ready, then stop it; halve the journal."""
    controller, task = await _run(kubeconfig, settings, journal, ExternalService())
    await api.create_widget("before", size=1)

    async def ready() -> bool:
        return await _phase(api, "before") == "Ready"

    await eventually(ready, "widget before is Ready")
    await controller.stop()
    await task
    _halve(journal)


def _halve(path: Path) -> None:
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2)


async def test_a_corrupt_journal_is_quarantined_and_the_engine_rebuilds_and_gets_ready(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "state" / "journal.db"
    settings = fast_settings(tmp_path / "state")
    async with _cluster(tmp_path) as (api, kubeconfig):
        await _first_run(api, kubeconfig, settings, journal)
        halved = journal.read_bytes()
        await api.create_widget("after", size=2)  # while the engine is down

        controller, task = await _run(kubeconfig, settings, journal, ExternalService())
        try:
            await asyncio.wait_for(controller.ready.wait(), 15)

            async def converged() -> bool:
                return await _phase(api, "after") == "Ready"

            await eventually(converged, "widget after converges on the fresh journal")
            assert await _phase(api, "before") == "Ready"
            assert controller.health_url is not None
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{controller.health_url}/readyz") as answer:
                    assert (answer.status, await answer.text()) == (200, "ok\n")
                async with http.get(f"{controller.health_url}/metrics") as answer:
                    assert "engine_journal_quarantined_total 1.0" in await answer.text()
            events = await api.get("/api/v1/namespaces/default/events")
            assert events is not None
            warnings = [e for e in events["items"] if e["reason"] == "JournalQuarantined"]
            assert len(warnings) == 1
            assert warnings[0]["type"] == "Warning"
            assert "corrupt" in warnings[0]["message"]
        finally:
            await controller.stop()
            await task
    kept = sorted(p.name for p in journal.parent.iterdir() if ".corrupt-" in p.name)
    assert kept[0].startswith("journal.db.corrupt-")
    assert (journal.parent / kept[0]).read_bytes() == halved  # kept as it was
    assert any(name.endswith(".head") for name in kept)
    assert check_journal(journal).records > 0  # the fresh journal holds the rebuilt run


async def test_with_refuse_a_corrupt_journal_stops_the_start_and_stays_in_place(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "state" / "journal.db"
    settings = fast_settings(tmp_path / "state")
    async with _cluster(tmp_path) as (api, kubeconfig):
        await _first_run(api, kubeconfig, settings, journal)
        before = sorted(os.listdir(journal.parent))
        refusing = replace(settings, journal_corrupt="refuse")
        _controller, task = await _run(kubeconfig, refusing, journal, ExternalService())
        with pytest.raises(CorruptJournal):
            await asyncio.wait_for(task, 15)
    assert sorted(os.listdir(journal.parent)) == before


async def test_a_damaged_header_is_quarantined_but_a_foreign_file_is_left_alone(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.db"
    opened = await SqliteJournal.open(journal)
    await opened.append("s", [NewEvent("Observed", {})])
    await opened.close()
    _damage_header(journal)  # J5: `file is not a database`
    with pytest.raises(NotAJournal) as refused:
        await SqliteJournal.open(journal)
    assert quarantinable(refused.value, journal)
    moved = quarantine(journal, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert [p.name for p in moved] == [
        "journal.db.corrupt-20260102T030405000000Z",
        "journal.db.corrupt-20260102T030405000000Z.head",
    ]
    foreign = tmp_path / "notes.db"
    _write(foreign, b"not a database at all, and no journal ever lived here")
    with pytest.raises(NotAJournal) as other:
        await SqliteJournal.open(foreign, readonly=True)
    assert not quarantinable(other.value, foreign)


def _damage_header(path: Path) -> None:
    with path.open("r+b") as file:
        file.write(b"garbage!")


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
