"""A restart on a journal of many settled Widgets and a few with their register step in
flight (kubernetes-asyncio over HTTP against the embedded API server, a SQLite journal
the Controller opens itself): the first reconcile records are the in-flight Widgets',
and no settled Widget's stream gets a record (no re-journaled observation: the start-up
scan taught the observation log what each had last journaled). A scan begun before the
controller (as `engine run` begins it) is used only while the journal is as it read it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.apiserver.http.embedded import serve_apiserver
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.manager.start_scan import EarlyScan, begin
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.operator import Operator
from engine.watchers import connect_kubeconfig
from tests.integration.reconcile_support import (
    WIDGETS,
    Api,
    ExternalService,
    eventually,
    fast_settings,
    install_crd,
    widget_operator,
)

COUNT, HELD = 24, ("w-07", "w-16")


def held_operator(service: ExternalService, gate: asyncio.Event, waiting: set[str]) -> Operator:
    """The Widget operator (its ConfigMap child, its `register` step) whose step waits
    for `gate` for the `HELD` Widgets (named in `waiting` while they wait)."""
    plain = widget_operator(service)

    async def provision(ctx: Context) -> None:
        await ctx.apply_child(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{ctx.name}-config", "labels": {"app": ctx.name}},
                "data": {"size": str(ctx.spec["size"])},
            }
        )

        async def register(key: str) -> dict[str, Any]:
            if ctx.name in HELD:
                waiting.add(ctx.name)
                await gate.wait()
            service.call(key)
            return {"registered": ctx.name}

        await ctx.effect("register", register)

    return Operator(
        resource=plain.resource,
        provision=provision,
        finalize=plain.finalize,
        children=plain.children,
    )


@contextlib.asynccontextmanager
async def engine(
    tmp_path: Path, operator: Operator, early_scan: EarlyScan | None = None
) -> AsyncIterator[Controller]:
    client = await connect_kubeconfig(tmp_path / "kubeconfig")
    controller = Controller(
        ControllerDeps(
            operator=operator,
            settings=fast_settings(tmp_path),
            api_client=client,
            journal_path=tmp_path / "journal.db",
            serve_health=False,
            handle_signals=False,
            record_events=False,
            shutdown_timeout=0.2,
            early_scan=early_scan,
        )
    )
    task = asyncio.create_task(controller.run())
    try:
        yield controller
    finally:
        await controller.stop()
        await task
        await client.close()


def rows_after(journal: Path, head: int) -> list[tuple[int, str, str, str]]:
    """(position, widget name, type, watch event) of the records past `head`."""
    with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT position, stream, type, coalesce(json_extract(data, '$.watch_event'), '') "
            "FROM records WHERE position > ? ORDER BY position",
            (head,),
        ).fetchall()
    return [(p, s.split("/")[3].split("#")[0], t, w) for p, s, t, w in rows]


async def test_a_restart_resumes_the_in_flight_first_and_journals_nothing_for_the_settled(
    tmp_path: Path,
) -> None:
    service, gate, waiting = ExternalService(), asyncio.Event(), set[str]()
    operator = held_operator(service, gate, waiting)
    journal = tmp_path / "journal.db"
    names = [f"w-{n:02d}" for n in range(COUNT)]
    async with (
        serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, server.url)
        await install_crd(api, operator)

        async def ready(name: str, generation: int) -> bool:
            status = ((await api.get(f"{WIDGETS}/{name}")) or {}).get("status") or {}
            return status.get("phase") == "Ready" and status.get("observedGeneration") == generation

        gate.set()
        async with engine(tmp_path, operator) as first:
            for name in names:
                await api.create_widget(name, size=1)
            await eventually(
                lambda: asyncio.sleep(0, first.count(state="Ready", phase="Ready") == COUNT),
                "every Widget Ready",
            )
            gate.clear()
            waiting.clear()
            for name in HELD:
                await api.merge(f"{WIDGETS}/{name}", {"spec": {"size": 2}})
            await eventually(
                lambda: asyncio.sleep(0, waiting == set(HELD)), "the held register steps started"
            )
        head = rows_after(journal, 0)[-1][0]
        gate.set()

        async with engine(tmp_path, operator) as second:
            for name in HELD:
                await eventually(lambda n=name: ready(n, 2), f"{name} Ready at generation 2")
            await eventually(
                lambda: asyncio.sleep(0, second.count(state="Ready", phase="Ready") == COUNT),
                "every Widget folded Ready by the restarted engine",
            )
        after = rows_after(journal, head)

    reconciled = [row for row in after if not (row[2] == "Observed" and row[3] != "reconcile")]
    assert reconciled, "the restarted engine journaled nothing"
    assert reconciled[0][1] in HELD, reconciled[:3]
    assert {name for _, name, _, _ in after} == set(HELD), "a settled Widget got a record"
    relisted = [row for row in after if row[2] == "Observed" and row[3] == "added"]
    assert {name for _, name, _, _ in relisted} == set(
        HELD
    )  # the in-flight relist marks the restart
    register = [key for key in service.calls if key.endswith(":2:register")]
    assert len(register) == len(HELD)  # each held step called once, after the restart
    assert all(service.calls[k] == 1 for k in register)


async def test_a_scan_begun_before_the_journal_moved_on_is_scanned_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="engine.runtime.manager.controller")
    service, gate, waiting = ExternalService(), asyncio.Event(), set[str]()
    operator = held_operator(service, gate, waiting)
    journal = tmp_path / "journal.db"
    names = [f"w-{n:02d}" for n in range(COUNT)]
    changed = "w-03"
    async with (
        serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, server.url)
        await install_crd(api, operator)

        async def ready(name: str, generation: int) -> bool:
            status = ((await api.get(f"{WIDGETS}/{name}")) or {}).get("status") or {}
            return status.get("phase") == "Ready" and status.get("observedGeneration") == generation

        gate.set()
        async with engine(tmp_path, operator) as first:
            for name in names:
                await api.create_widget(name, size=1)
            await eventually(
                lambda: asyncio.sleep(0, first.count(state="Ready", phase="Ready") == COUNT),
                "every Widget Ready",
            )
            stale = begin(journal)  # read now; the journal moves on below
            assert stale is not None
            await asyncio.wrap_future(stale.result)
            await api.merge(f"{WIDGETS}/{changed}", {"spec": {"size": 3}})
            await eventually(lambda: ready(changed, 2), f"{changed} Ready at generation 2")
            gate.clear()
            for name in HELD:
                await api.merge(f"{WIDGETS}/{name}", {"spec": {"size": 2}})
            await eventually(
                lambda: asyncio.sleep(0, waiting == set(HELD)), "the held register steps started"
            )
        head = rows_after(journal, 0)[-1][0]
        gate.set()

        caplog.clear()
        async with engine(tmp_path, operator, early_scan=stale) as second:
            for name in HELD:
                await eventually(lambda n=name: ready(n, 2), f"{name} Ready at generation 2")
            await eventually(
                lambda: asyncio.sleep(0, second.count(state="Ready", phase="Ready") == COUNT),
                "every Widget folded Ready by the restarted engine",
            )
        after = rows_after(journal, head)
        assert "journal scanned at start (after the open)" in caplog.text

        # a scan begun on the journal as it is now is used, and nothing is journaled again
        caplog.clear()
        settled_head = rows_after(journal, 0)[-1][0]
        async with engine(tmp_path, operator, early_scan=begin(journal)) as third:
            await eventually(
                lambda: asyncio.sleep(0, third.count(state="Ready", phase="Ready") == COUNT),
                "every Widget folded Ready by the third engine",
            )
        assert "journal scanned at start (begun before the controller)" in caplog.text
        assert rows_after(journal, settled_head) == []

    # the stale scan's seed would have re-journaled the changed Widget's observation
    assert {name for _, name, _, _ in after} == set(HELD), "a settled Widget got a record"
    reconciled = [row for row in after if not (row[2] == "Observed" and row[3] != "reconcile")]
    assert reconciled
    assert reconciled[0][1] in HELD, reconciled[:3]
    register = [key for key in service.calls if key.endswith(":2:register")]
    assert len(register) == len(HELD) + 1  # the held ones and the changed one
    assert all(service.calls[k] == 1 for k in register)  # no completed step repeated
