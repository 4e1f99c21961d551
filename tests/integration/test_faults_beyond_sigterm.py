"""SIGTERM while an effect is in flight: the engine drains, the effect runs to its end and
its outcome is journaled before the process's run returns, and the next start calls
nothing again; past the drain's bound the effect is cancelled with its intent journaled
and the next start calls it again under the same idempotency key, once, so the target
applies it once and the journal holds one success. A target that lost its idempotency
records gets no completed call again: the journal, not the target, says what was done.
The signal is a real SIGTERM to this process, taken by the Controller's own handlers;
the API server, its HTTP client and SQLite are the real ones."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from engine.apiserver.http.embedded import serve_apiserver
from engine.fsm import events as ev
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.operator import CustomResource, Operator
from engine.watchers import connect_kubeconfig
from tests.integration.reconcile_support import (
    GROUP,
    KIND,
    PLURAL,
    SCHEMA,
    VERSION,
    WIDGETS,
    Api,
    eventually,
    fast_settings,
    install_crd,
)


@dataclass
class HeldTarget:
    """The effect target: calls per idempotency key; a call waits on `gate` once begun."""

    gate: asyncio.Event
    begun: Counter[str]
    applied: Counter[str]


def _operator(target: HeldTarget) -> Operator:
    async def provision(ctx: Context) -> None:
        async def register(key: str) -> str:
            target.begun[key] += 1
            await target.gate.wait()
            target.applied[key] += 1
            return key

        await ctx.effect("register", register)

    async def finalize(ctx: Context) -> None:
        return None

    return Operator(
        resource=CustomResource(GROUP, VERSION, KIND, PLURAL, SCHEMA),
        provision=provision,
        finalize=finalize,
    )


@dataclass
class Cluster:
    api: Api
    kubeconfig: Path
    journal: SqliteJournal


@contextlib.asynccontextmanager
async def _cluster(tmp_path: Path, operator: Operator) -> AsyncIterator[Cluster]:
    async with (
        serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, server.url)
        await install_crd(api, operator)
        journal = await SqliteJournal.open(tmp_path / "journal.db", synchronous="NORMAL")
        try:
            yield Cluster(api, server.kubeconfig_path, journal)
        finally:
            await journal.close()


@contextlib.asynccontextmanager
async def _engine(
    cluster: Cluster, operator: Operator, tmp_path: Path, *, drain: float
) -> AsyncIterator[asyncio.Task[None]]:
    """A Controller that takes SIGTERM itself, running until the signal (or the end)."""
    client = await connect_kubeconfig(cluster.kubeconfig)
    controller = Controller(
        ControllerDeps(
            operator=operator,
            settings=fast_settings(tmp_path),
            api_client=client,
            journal=cluster.journal,
            handle_signals=True,
            shutdown_timeout=drain,
        )
    )
    task = asyncio.create_task(controller.run())
    try:
        await asyncio.wait_for(controller.ready.wait(), 15)
        yield task
    finally:
        await controller.stop()
        await task
        await client.close()


async def _key_records(journal: SqliteJournal, key: str) -> list[str]:
    return [
        record.type
        async for record in journal.read_all()
        if record.data.get("key") == key and record.type.startswith("Effect")
    ]


async def _in_flight(api: Api, target: HeldTarget, name: str) -> str:
    """Create Widget `name` and wait until its effect has begun; return the effect key."""
    made = await api.create_widget(name, size=1)
    key = f"{made['metadata']['uid']}:1:register"

    async def begun() -> bool:
        return target.begun[key] == 1

    await eventually(begun, "the effect is in flight")
    return key


async def _phase(api: Api, name: str) -> str | None:
    widget = await api.get(f"{WIDGETS}/{name}")
    return ((widget or {}).get("status") or {}).get("phase")


async def test_sigterm_during_an_effect_lets_it_finish_and_journals_its_outcome(
    tmp_path: Path,
) -> None:
    target = HeldTarget(asyncio.Event(), Counter(), Counter())
    operator = _operator(target)
    async with _cluster(tmp_path, operator) as cluster:
        async with _engine(cluster, operator, tmp_path, drain=10.0) as run:
            key = await _in_flight(cluster.api, target, "terminated")
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.3)
            assert not run.done(), "the engine stopped without waiting for the effect"
            target.gate.set()
            await asyncio.wait_for(asyncio.shield(run), 10)
        assert await _key_records(cluster.journal, key) == [
            ev.EFFECT_STARTED,
            ev.EFFECT_SUCCEEDED,
        ]
        async with _engine(cluster, operator, tmp_path, drain=10.0):

            async def ready() -> bool:
                return await _phase(cluster.api, "terminated") == "Ready"

            await eventually(ready, "the widget is Ready after the restart")
        assert target.begun == Counter({key: 1})
        assert target.applied == Counter({key: 1})


async def test_sigterm_past_the_drain_bound_resumes_the_effect_under_its_key(
    tmp_path: Path,
) -> None:
    target = HeldTarget(asyncio.Event(), Counter(), Counter())
    operator = _operator(target)
    async with _cluster(tmp_path, operator) as cluster:
        async with _engine(cluster, operator, tmp_path, drain=0.2) as run:
            key = await _in_flight(cluster.api, target, "cut")
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(asyncio.shield(run), 10)
        # cancelled at the bound: its intent is journaled, no outcome, nothing applied
        assert await _key_records(cluster.journal, key) == [ev.EFFECT_STARTED]
        assert target.applied == Counter()
        target.gate.set()
        async with _engine(cluster, operator, tmp_path, drain=10.0):

            async def ready() -> bool:
                return await _phase(cluster.api, "cut") == "Ready"

            await eventually(ready, "the widget is Ready after the restart")
        records = await _key_records(cluster.journal, key)
        assert records.count(ev.EFFECT_SUCCEEDED) == 1
        assert target.begun == Counter({key: 2})  # the same key again, no new one
        assert target.applied == Counter({key: 1})


async def test_a_target_that_lost_its_idempotency_records_gets_no_completed_call_again(
    tmp_path: Path,
) -> None:
    target = HeldTarget(asyncio.Event(), Counter(), Counter())
    operator = _operator(target)
    async with _cluster(tmp_path, operator) as cluster:
        async with _engine(cluster, operator, tmp_path, drain=0.2) as run:
            target.gate.set()
            done = (await cluster.api.create_widget("done", size=1))["metadata"]["uid"]

            async def finished() -> bool:
                return await _phase(cluster.api, "done") == "Ready"

            await eventually(finished, "the first widget is Ready")
            target.gate.clear()
            cut = (await cluster.api.create_widget("cut", size=1))["metadata"]["uid"]

            async def begun() -> bool:
                return target.begun[f"{cut}:1:register"] == 1

            await eventually(begun, "the second widget's effect is in flight")
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(asyncio.shield(run), 10)
        # the target forgets every key it saw (its store lost, restored empty)
        target.begun.clear()
        target.applied.clear()
        target.gate.set()
        async with _engine(cluster, operator, tmp_path, drain=10.0):

            async def ready() -> bool:
                return await _phase(cluster.api, "cut") == "Ready"

            await eventually(ready, "the second widget is Ready after the restart")
        # the journal, not the target, says what was done: the recorded success is not
        # sent again; only the call with an intent and no outcome is, under its own key
        assert target.begun == Counter({f"{cut}:1:register": 1})
        assert await _key_records(cluster.journal, f"{done}:1:register") == [
            ev.EFFECT_STARTED,
            ev.EFFECT_SUCCEEDED,
        ]
