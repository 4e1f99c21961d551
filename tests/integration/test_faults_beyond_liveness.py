"""Liveness of the running engine (B.8): a handler that raises on one key is that key's
problem only, and a key that raises on every attempt gives up to Failed while the others
converge (H5, H8); a running effect is not cancelled by a change to its object arriving
meanwhile (H6); no effect proceeds while the journal cannot commit (H7); the engine's
task count stays bounded over rounds of creates and deletes (H4). The engine, the
embedded API server and SQLite are the real ones, over real HTTP."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path

from engine.fsm import events as ev
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.operator import ChildKind, CustomResource, Operator
from tests.integration.reconcile_support import (
    GROUP,
    KIND,
    PLURAL,
    SCHEMA,
    VERSION,
    WIDGETS,
    Engine,
    ExternalService,
    eventually,
    fast_settings,
    running_engine,
    widget_operator,
)

ATTEMPTS = 3


def _operator(
    provision_calls: Counter[str], effect: dict[str, asyncio.Event] | None = None
) -> Operator:
    """Widgets named `poison-*` raise on every attempt (the second held on
    `effect[name]` when given), `flaky-*` on their first only; the others apply their
    ConfigMap and run one step `register` (held on `effect[name]` when given, and
    counted in `provision_calls` by key once it returns)."""
    held = effect or {}

    async def provision(ctx: Context) -> None:
        provision_calls[ctx.name] += 1
        if ctx.name.startswith("poison"):
            gate = held.get(ctx.name)
            if gate is not None and provision_calls[ctx.name] == 2:
                await gate.wait()
            raise RuntimeError("the handler breaks on this object")
        if ctx.name.startswith("flaky") and provision_calls[ctx.name] == 1:
            raise RuntimeError("the handler breaks once")
        await ctx.apply_child(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{ctx.name}-config"},
                "data": {"size": str(ctx.spec["size"])},
            }
        )

        async def register(key: str) -> str:
            gate = held.get(ctx.name)
            if gate is not None:
                await gate.wait()
            provision_calls[key] += 1
            return key

        await ctx.effect("register", register)

    async def finalize(ctx: Context) -> None:
        return None

    return Operator(
        resource=CustomResource(GROUP, VERSION, KIND, PLURAL, SCHEMA),
        provision=provision,
        finalize=finalize,
        children=(ChildKind("", "v1", "ConfigMap", "configmaps"),),
    )


async def _until_phase(engine: Engine, name: str, phase: str) -> None:
    async def reached() -> bool:
        return await engine.phase(name) == phase

    await eventually(reached, f"{name} is {phase}")


async def _records_of(engine: Engine, name: str) -> list[str]:
    widget = await engine.widget(name)
    assert widget is not None
    uid = widget["metadata"]["uid"]
    stream = next(s for s in await engine.journal.streams() if s.endswith(uid))
    return [r.type for r in await engine.journal.read_stream(stream)]


async def test_a_key_raising_on_every_attempt_gives_up_while_the_others_converge(
    tmp_path: Path,
) -> None:
    calls: Counter[str] = Counter()
    looping = asyncio.Event()
    settings = fast_settings(tmp_path, max_effect_attempts=ATTEMPTS, backoff_cap_seconds=0.05)
    operator = _operator(calls, {"poison": looping})
    async with running_engine(tmp_path, settings=settings, operator=operator) as engine:
        await engine.api.create_widget("poison", size=1)
        await engine.api.create_widget("flaky", size=2)
        for index in range(4):
            await engine.api.create_widget(f"good-{index}", size=index)

        async def mid_loop() -> bool:
            return calls["poison"] == 2

        await eventually(mid_loop, "the poison key is held in its second attempt")
        # the others converge while the poison key is in the middle of its loop
        for name in ("flaky", *(f"good-{index}" for index in range(4))):
            await _until_phase(engine, name, "Ready")
            assert await engine.config(name) is not None
        assert calls["poison"] == 2
        assert await engine.phase("poison") != "Failed"
        looping.set()
        await _until_phase(engine, "poison", "Failed")
        # the raising key was tried exactly as often as allowed, then quarantined
        assert calls["poison"] == ATTEMPTS
        assert calls["flaky"] == 2
        assert all(calls[f"good-{index}"] == 1 for index in range(4))
        registered = [key for key in calls if key.endswith(":register")]
        assert len(registered) == 5
        assert all(calls[key] == 1 for key in registered)
        assert await engine.config("poison") is None
        # once Failed, the engine leaves it alone and still serves new objects
        await engine.api.create_widget("late", size=5)
        await _until_phase(engine, "late", "Ready")
        assert calls["poison"] == ATTEMPTS
        assert ev.EFFECT_SUCCEEDED not in await _records_of(engine, "poison")


async def test_a_change_arriving_during_a_running_effect_does_not_cancel_it(
    tmp_path: Path,
) -> None:
    calls: Counter[str] = Counter()
    gate = asyncio.Event()
    operator = _operator(calls, {"held": gate})
    async with running_engine(tmp_path, operator=operator) as engine:
        made = await engine.api.create_widget("held", size=1)
        uid = made["metadata"]["uid"]

        async def running() -> bool:
            return await engine.config("held") is not None

        await eventually(running, "the provision reached its step")
        # a spec change, a label and an annotation arrive while the step is in flight
        path = f"{WIDGETS}/held"
        await engine.api.merge(path, {"spec": {"size": 2}})
        await engine.api.merge(path, {"metadata": {"labels": {"touched": "yes"}}})
        await engine.api.merge(path, {"metadata": {"annotations": {"note": "again"}}})
        await asyncio.sleep(0.3)
        assert calls[f"{uid}:1:register"] == 0, "the step is still held"
        gate.set()

        async def reprovisioned() -> bool:
            widget = await engine.widget("held")
            status = (widget or {}).get("status") or {}
            return status.get("phase") == "Ready" and status.get("observedGeneration") == 2

        await eventually(reprovisioned, "the new generation is provisioned")
        # the first generation's step ran to its end once, then the second's once
        assert calls[f"{uid}:1:register"] == 1
        assert calls[f"{uid}:2:register"] == 1
        stream = next(s for s in await engine.journal.streams() if s.endswith(uid))
        records = await engine.journal.read_stream(stream)
        first = [r for r in records if r.data.get("key") == f"{uid}:1:register"]
        assert [r.type for r in first] == [ev.EFFECT_STARTED, ev.EFFECT_SUCCEEDED]


async def test_no_effect_proceeds_while_the_journal_cannot_commit(tmp_path: Path) -> None:
    service = ExternalService()
    async with running_engine(tmp_path, service=service) as engine:
        await engine.api.create_widget("before", size=1)
        await _until_phase(engine, "before", "Ready")
        blocker = sqlite3.connect(tmp_path / "journal.db", isolation_level=None, timeout=0)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # a second writer holds the write lock
            calls_before = dict(service.calls)
            await engine.api.create_widget("during", size=2)
            await engine.api.merge(f"{WIDGETS}/before", {"spec": {"size": 3}})
            await asyncio.sleep(0.4)
            assert service.calls == calls_before, "an effect ran with the journal blocked"
            assert await engine.config("during") is None
            before = await engine.config("before")
            assert before is not None
            assert before["data"]["size"] == "1"
            blocker.execute("ROLLBACK")
        finally:
            blocker.close()
        await _until_phase(engine, "during", "Ready")

        async def updated() -> bool:
            config = await engine.config("before")
            return config is not None and config["data"]["size"] == "3"

        await eventually(updated, "the blocked update is applied once the journal commits")
        assert all(count == 1 for count in service.calls.values())
        assert len(service.calls) == 3


async def test_the_task_count_stays_bounded_over_rounds_of_creates_and_deletes(
    tmp_path: Path,
) -> None:
    service = ExternalService()
    async with running_engine(tmp_path, operator=widget_operator(service)) as engine:

        async def round_of(names: list[str]) -> int:
            for name in names:
                await engine.api.create_widget(name, size=1)
            for name in names:
                await _until_phase(engine, name, "Ready")
            for name in names:
                assert await engine.api.delete(f"{WIDGETS}/{name}") == 200

            async def gone() -> bool:
                return all([await engine.widget(name) is None for name in names])

            await eventually(gone, f"{names} finalized and gone")
            await asyncio.sleep(0.2)  # let the turns that ended return their tasks
            return len(asyncio.all_tasks())

        baseline = await round_of([f"warm-{index}" for index in range(2)])
        counts = [await round_of([f"r{n}-{index}" for index in range(3)]) for n in range(2)]
        # each round makes and removes three keys: a task kept per key would add 3 a round
        assert max(counts) <= baseline + 2, (baseline, counts)
        assert len(service.calls) == 2 * (2 + 6)
