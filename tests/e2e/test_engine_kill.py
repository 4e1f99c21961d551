"""The engine killed with SIGKILL mid-provisioning and restarted on the same journal
converges, and each effect key is applied once at the target and succeeds once in the
journal (R3, R4, R12)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from engine.apiserver.http.embedded import serve_apiserver
from engine.example.registry_client import RegistryClient
from engine.example.registry_service import Faults, serve_registry
from engine.fsm import events as ev
from engine.journal.sqlite import SqliteJournal
from tests.integration.reconcile_support import (
    WIDGETS,
    Api,
    ExternalService,
    eventually,
    install_crd,
    widget_operator,
)

WIDGET_COUNT = 12
ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def engine_process(
    kubeconfig: Path, journal: Path, registry: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.e2e.widget_engine",
        str(kubeconfig),
        str(journal),
        registry,
        cwd=ROOT,
        env={**os.environ, "OTEL_SDK_DISABLED": "true"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_engine_killed_mid_provisioning_converges_with_one_success_per_key(
    tmp_path: Path,
) -> None:
    journal_path = tmp_path / "state" / "journal.db"
    faults = Faults(latency_seconds=0.3)
    async with (
        serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
        serve_registry(faults=faults) as registry,
        aiohttp.ClientSession() as session,
        RegistryClient(registry.url) as oracle,
    ):
        api = Api(session, server.url)
        await install_crd(api, widget_operator(ExternalService()))
        names = [f"k-{n:02d}" for n in range(WIDGET_COUNT)]
        for name in names:
            await api.create_widget(name, size=1)

        async with engine_process(server.kubeconfig_path, journal_path, registry.url) as first:

            async def some_calls() -> bool:
                return len(await oracle.calls()) >= 2

            await eventually(some_calls, "the first registrations are under way", within=30)
            first.send_signal(signal.SIGKILL)
            assert await first.wait() == -signal.SIGKILL

        registered = {r.name for r in await oracle.registrations()}
        assert registered != set(names), "the kill came after provisioning finished"

        async with engine_process(server.kubeconfig_path, journal_path, registry.url) as second:

            async def all_ready() -> bool:
                _, listed = await api.request("GET", WIDGETS)
                phases = [(i.get("status") or {}).get("phase") for i in listed["items"]]
                return phases == ["Ready"] * WIDGET_COUNT

            await eventually(all_ready, "every widget is Ready after the restart", within=60)
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 20) == 0

        applied = await oracle.applied()
        assert len(applied) == WIDGET_COUNT
        assert set(applied.values()) == {1}
        assert {r.name for r in await oracle.registrations()} == set(names)

    journal = await SqliteJournal.open(journal_path, readonly=True)
    try:
        successes: Counter[str] = Counter()
        async for record in journal.read_all():
            if record.type == ev.EFFECT_SUCCEEDED:
                successes[record.data["key"]] += 1
    finally:
        await journal.close()
    register_keys = [k for k in successes if k.endswith(":register")]
    assert len(register_keys) == WIDGET_COUNT
    assert set(successes.values()) == {1}
