"""Site engines (Controllers) against the embedded API server and the example registry,
over real HTTP, for the supervision tests: several replicas, journals to read back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from engine.apiserver.http.embedded import serve_apiserver
from engine.example.registry_client import RegistryClient
from engine.example.registry_service import serve_registry
from engine.example.site import site_operator
from engine.example.site_resource import SITE
from engine.journal.record import Record
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.manager.settings import Settings
from engine.runtime.reconcile.operator import Operator
from engine.watchers import connect_kubeconfig
from tests.integration.reconcile_support import Api, eventually

NAMESPACE = "default"
SITES = f"/apis/{SITE.group}/{SITE.version}/namespaces/{NAMESPACE}/{SITE.plural}"
EVENTS = f"/api/v1/namespaces/{NAMESPACE}/events"


def supervision_settings(state_dir: Path, **changes: Any) -> Settings:
    settings = Settings(
        state_dir=state_dir,
        health_port=0,
        health_host="127.0.0.1",
        journal_synchronous="NORMAL",
        backoff_base_seconds=0.01,
        backoff_cap_seconds=0.5,
        lease_duration_seconds=1.5,
        lease_renew_deadline_seconds=1.0,
        lease_retry_period_seconds=0.2,
        dependency_poll_seconds=0.2,
    )
    return replace(settings, **changes)


@dataclass
class Replica:
    controller: Controller
    journal: SqliteJournal
    task: asyncio.Task[None]

    async def records(self, *types: str) -> list[Record]:
        found = []
        for stream in await self.journal.streams():
            found += [r for r in await self.journal.read_stream(stream) if r.type in types]
        return found


@dataclass
class Cluster:
    api: Api
    registry: RegistryClient
    kubeconfig: Path
    stack: AsyncExitStack
    tmp_path: Path
    replicas: int = 0

    async def start(self, settings: Settings, operator: Operator | None = None) -> Replica:
        """A Controller of `operator` (the Site operator by default); waits until it is
        ready (synced)."""
        self.replicas += 1
        home = self.tmp_path / f"replica-{self.replicas}"
        home.mkdir()
        client = await connect_kubeconfig(self.kubeconfig)
        self.stack.push_async_callback(client.close)
        operator = operator or site_operator(self.registry)
        journal = await SqliteJournal.open(
            home / "journal.db", synchronous="NORMAL", redact=operator.secret_fields
        )
        self.stack.push_async_callback(journal.close)
        controller = Controller(
            ControllerDeps(
                operator=operator,
                settings=replace(settings, state_dir=home),
                api_client=client,
                journal=journal,
                handle_signals=False,
            )
        )
        task = asyncio.create_task(controller.run())
        self.stack.push_async_callback(_stopped, controller, task)
        ready = asyncio.create_task(controller.ready.wait())
        await asyncio.wait({ready, task}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        assert controller.ready.is_set(), "the controller did not get ready"
        return Replica(controller, journal, task)

    async def create_site(self, name: str, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{SITE.group}/{SITE.version}",
            "kind": SITE.kind,
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"domain": f"{name}.example.com", **spec},
        }
        status, made = await self.api.request("POST", SITES, body)
        assert status == 201, made
        return made

    async def site(self, name: str) -> dict[str, Any] | None:
        return await self.api.get(f"{SITES}/{name}")

    async def phase(self, name: str) -> str | None:
        site = await self.site(name)
        return None if site is None else (site.get("status") or {}).get("phase")

    async def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        site = await self.site(name) or {}
        for condition in (site.get("status") or {}).get("conditions") or ():
            if condition.get("type") == kind:
                return dict(condition)
        return None

    async def events(self, reason: str) -> list[dict[str, Any]]:
        body = await self.api.get(EVENTS) or {}
        return [e for e in body.get("items", []) if e.get("reason") == reason]

    async def all_ready(self, *names: str, within: float = 15.0) -> None:
        async def ready() -> bool:
            return all([await self.phase(n) == "Ready" for n in names])

        await eventually(ready, f"{names} Ready", within=within)


async def _stopped(controller: Controller, task: asyncio.Task[None]) -> None:
    await controller.stop()
    await task


@asynccontextmanager
async def site_cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """The embedded API server with the Site CRD, and the example registry."""
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(
            serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig")
        )
        running = await stack.enter_async_context(serve_registry())
        registry = await stack.enter_async_context(RegistryClient(running.url))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        api = Api(session, server.url)
        status, answer = await api.request(
            "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", SITE.crd()
        )
        assert status == 201, answer

        async def served() -> bool:
            return (await api.request("GET", SITES))[0] == 200

        await eventually(served, "the Site CRD is served")
        # the controllers are stopped first (LIFO), before the servers they talk to
        inner = await stack.enter_async_context(AsyncExitStack())
        yield Cluster(api, registry, server.kubeconfig_path, inner, tmp_path)


def cycle_of(record: Record) -> list[str]:
    """The members (`namespace/name`) of a `DeadlockDetected` record, in order."""
    return [stream.split("/", 2)[2].split("#")[0] for stream in record.data["cycle"]]


def pretty(records: list[Record]) -> str:
    return json.dumps([(r.type, r.data) for r in records], default=str)[:2000]
