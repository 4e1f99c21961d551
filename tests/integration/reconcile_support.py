"""A small test operator ("Widget": one ConfigMap child and one external step recorded in
memory) and a running engine against the embedded API server, for the reconcile tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from engine.apiserver.http.embedded import serve_apiserver
from engine.clock import Clock, SystemClock
from engine.effects import PermanentError
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.manager.settings import Settings
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.operator import ChildKind, CustomResource, Operator
from engine.watchers import connect_kubeconfig
from tests.support.fault_proxy import FaultProxy, FaultSettings, serve_fault_proxy

GROUP, VERSION, KIND, PLURAL = "test.engine.dev", "v1", "Widget", "widgets"
NAMESPACE = "default"
WIDGETS = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"
CONFIGMAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 0},
                "message": {"type": "string", "default": "hello"},
                "external": {"type": "boolean", "default": True},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


@dataclass
class ExternalService:
    """The external side effect, in memory: calls per idempotency key, and what is live."""

    calls: dict[str, int] = field(default_factory=dict)
    registered: dict[str, dict[str, Any]] = field(default_factory=dict)
    refuse_size: int = 13
    """A spec with this size is refused for good (a PermanentError)."""
    failures_left: int = 0
    """Fail this many calls retryably before succeeding."""

    def call(self, key: str) -> None:
        self.calls[key] = self.calls.get(key, 0) + 1


def widget_operator(service: ExternalService, *, config_map: bool = True) -> Operator:
    """The Widget operator: a ConfigMap child and one external step, one cleanup. With
    `config_map` False it has no child and the Widgets are the only kind it watches."""

    async def provision(ctx: Context) -> None:
        size = int(ctx.spec["size"])
        if size == service.refuse_size:
            raise PermanentError(f"size {size} is reserved; pick another size")
        if config_map:
            await ctx.apply_child(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"{ctx.name}-config", "labels": {"app": ctx.name}},
                    "data": {"size": str(size), "message": str(ctx.spec.get("message", ""))},
                }
            )
        if ctx.spec.get("external", True):

            async def register(key: str) -> dict[str, Any]:
                service.call(key)
                if service.failures_left > 0:
                    service.failures_left -= 1
                    raise ConnectionError("the registry is briefly unavailable")
                service.registered[ctx.name] = {"size": size}
                return {"registered": ctx.name}

            await ctx.effect("register", register)

    async def finalize(ctx: Context) -> None:
        async def unregister(key: str) -> None:
            service.call(key)
            service.registered.pop(ctx.name, None)

        await ctx.effect("unregister", unregister)

    return Operator(
        resource=CustomResource(GROUP, VERSION, KIND, PLURAL, SCHEMA),
        provision=provision,
        finalize=finalize,
        children=(ChildKind("", "v1", "ConfigMap", "configmaps"),) if config_map else (),
    )


def fast_settings(state_dir: Path, **changes: Any) -> Settings:
    settings = Settings(
        state_dir=state_dir,
        health_port=0,
        health_host="127.0.0.1",
        max_concurrent_reconciles=8,
        journal_synchronous="NORMAL",
        backoff_base_seconds=0.01,
        backoff_cap_seconds=1.0,
    )
    return replace(settings, **changes)


class Api:
    """Plain JSON over HTTP against the embedded API server (what a user or kubectl does)."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self.url = url

    async def request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> tuple[int, dict[str, Any]]:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type}
        async with self._session.request(
            method, self.url + path, data=data, headers=headers
        ) as response:
            return response.status, await response.json(content_type=None)

    async def get(self, path: str) -> dict[str, Any] | None:
        status, body = await self.request("GET", path)
        return body if status == 200 else None

    async def create_widget(self, name: str, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }
        status, made = await self.request("POST", WIDGETS, body)
        assert status == 201, made
        return made

    async def merge(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = await self.request(
            "PATCH", path, body, content_type="application/merge-patch+json"
        )
        assert status == 200, answer
        return answer

    async def delete(self, path: str) -> int:
        status, _ = await self.request("DELETE", path)
        return status


@dataclass
class Engine:
    """A running engine and what the tests look at."""

    api: Api
    controller: Controller
    service: ExternalService
    journal: SqliteJournal
    kubeconfig: Path
    apiserver_pid: int | None = None
    proxy: FaultProxy | None = None

    async def widget(self, name: str) -> dict[str, Any] | None:
        return await self.api.get(f"{WIDGETS}/{name}")

    async def phase(self, name: str) -> str | None:
        widget = await self.widget(name)
        return None if widget is None else (widget.get("status") or {}).get("phase")

    async def config(self, name: str) -> dict[str, Any] | None:
        return await self.api.get(f"{CONFIGMAPS}/{name}-config")


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, *, within: float = 15.0
) -> None:
    """Poll `check` until it holds; fail naming `what` after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)


async def install_crd(api: Api, operator: Operator) -> None:
    status, answer = await api.request(
        "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", operator.resource.crd()
    )
    assert status == 201, answer

    async def served() -> bool:
        status, _ = await api.request("GET", WIDGETS)
        return status == 200

    await eventually(served, "the Widget CRD is served")


@dataclass(frozen=True)
class Server:
    url: str
    kubeconfig_path: Path
    pid: int | None = None  # its own process's, when it runs in one


@asynccontextmanager
async def apiserver_process(tmp_path: Path) -> AsyncIterator[Server]:
    """`engine apiserver` in its own process (so it does not share the engine's core)."""
    kubeconfig = tmp_path / "kubeconfig"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "engine",
        "apiserver",
        "--db",
        str(tmp_path / "apiserver.db"),
        "--kubeconfig",
        str(kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url is not None, f"no URL in {line!r}"
        yield Server(url.group(0), kubeconfig, process.pid)
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 20)


@asynccontextmanager
async def _server(tmp_path: Path, *, separate: bool) -> AsyncIterator[Server]:
    if separate:
        async with apiserver_process(tmp_path) as server:
            yield server
    else:
        async with serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as running:
            yield Server(running.url, running.kubeconfig_path)


@asynccontextmanager
async def running_engine(
    tmp_path: Path,
    *,
    service: ExternalService | None = None,
    settings: Settings | None = None,
    separate_apiserver: bool = False,
    fault_proxy: FaultSettings | None = None,
    operator: Operator | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[Engine]:
    """The API server (in this process, or its own with `separate_apiserver`), the Widget
    CRD, and a Controller running against it (through a fault proxy, whose settings the
    test may change as `engine.proxy.settings`, with `fault_proxy`); the Widget operator
    on `service`, or `operator`; the engine's and its journal's clock `clock`, or the
    system's."""
    service = service or ExternalService()
    operator = operator or widget_operator(service)
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(_server(tmp_path, separate=separate_apiserver))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        api = Api(session, server.url)
        await install_crd(api, operator)
        kubeconfig, proxy = server.kubeconfig_path, None
        if fault_proxy is not None:
            proxy = await stack.enter_async_context(serve_fault_proxy(server.url, fault_proxy))
            config = yaml.safe_load(kubeconfig.read_text())
            config["clusters"][0]["cluster"]["server"] = proxy.url
            kubeconfig = tmp_path / "proxy-kubeconfig"
            kubeconfig.write_text(yaml.safe_dump(config))
        client = await connect_kubeconfig(kubeconfig)
        clock = clock or SystemClock()
        journal = await SqliteJournal.open(
            tmp_path / "journal.db", synchronous="NORMAL", clock=clock
        )
        controller = Controller(
            ControllerDeps(
                operator=operator,
                settings=settings or fast_settings(tmp_path),
                api_client=client,
                journal=journal,
                clock=clock,
                handle_signals=False,
            )
        )
        task = asyncio.create_task(controller.run())
        try:
            ready = asyncio.create_task(controller.ready.wait())
            await asyncio.wait({ready, task}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()
            assert controller.ready.is_set(), "the controller did not get ready"
            yield Engine(
                api, controller, service, journal, server.kubeconfig_path, server.pid, proxy
            )
        finally:
            await controller.stop()
            await task
            await journal.close()
            await client.close()
