"""Run the API server inside the current event loop: `serve_apiserver` starts it on a
loopback port, writes a kubeconfig, and stops it cleanly on exit."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from engine.apiserver.controllers.manager import ControllerManager
from engine.apiserver.gc.collector import Collector
from engine.apiserver.http.app import build_app
from engine.apiserver.http.audit import AuditLog
from engine.apiserver.http.auth import LOCAL_TOKEN, required_token
from engine.apiserver.http.kubeconfig import write_kubeconfig
from engine.apiserver.http.target import Target
from engine.apiserver.kubelet.pod_stages import KubeletSettings
from engine.apiserver.kubelet.simulator import Kubelet
from engine.apiserver.store.api_context import ApiContext, Settings
from engine.apiserver.store.resource_types import BUILTINS, CRD_KEY_PREFIX, Registry
from engine.apiserver.store.storage import Change, Store
from engine.apiserver.verbs.deletion import DeleteOptions
from engine.apiserver.verbs.writes import WriteOptions, create

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
__all__ = ["DeleteOptions", "RunningApiServer", "serve_apiserver"]


@dataclass(frozen=True)
class RunningApiServer:
    """A started server: its base URL, the kubeconfig written for it, the bound port, and
    whether clients must send the kubeconfig's bearer token (off loopback)."""

    url: str
    kubeconfig_path: Path
    port: int
    token_required: bool = False


def _crds(store: Store) -> list[dict[str, object]]:
    return [obj for _, obj in store.items(CRD_KEY_PREFIX)]


async def _ensure_namespaces(ctx: ApiContext) -> None:
    namespace_type = BUILTINS[0]
    for name in SYSTEM_NAMESPACES:
        if ctx.store.get(namespace_type.key("", name)) is None:
            target = Target(rtype=namespace_type, namespace=None, name=None, subresource=None)
            await create(ctx, target, {"metadata": {"name": name}}, WriteOptions())


@contextlib.asynccontextmanager
async def serve_apiserver(
    *,
    db: str = ":memory:",
    host: str = "127.0.0.1",
    port: int = 0,
    kubeconfig_path: Path | None = None,
    audit_log: Path | None = None,
    settings: Settings | None = None,
    token: str | None = None,
    kubelet: KubeletSettings | None = None,
) -> AsyncIterator[RunningApiServer]:
    """Serve the API at http://host:port (port 0: a free one) for the `async with` body.

    `db` is an SQLite path (state survives a restart) or ":memory:". The kubeconfig goes to
    `kubeconfig_path`, or to a temporary file removed on exit. Guarantees: on entry the
    server answers requests and `default` exists; on exit watches end, the collector
    stops and the database is closed.
    The workload controllers and the simulated kubelet (`kubelet`, default settings if
    None) run inside the server.
    Authentication: on a loopback `host` none; on any other address every request needs
    the bearer token `token` (a random one when None), which the kubeconfig carries.
    """
    settings = settings or Settings()
    store = await Store.open(db, retention=settings.retention)
    registry = Registry()
    registry.refresh(_crds(store))

    def refresh_types(changes: Sequence[Change]) -> None:
        if any(change.key.startswith(CRD_KEY_PREFIX) for change in changes):
            registry.refresh(_crds(store))

    store.add_listener(refresh_types)
    ctx = ApiContext(store=store, registry=registry, settings=settings)
    log = AuditLog(audit_log) if audit_log is not None else None
    token = required_token(host, token)
    runner = web.AppRunner(
        build_app(ctx, audit_log=log, token=token), handle_signals=False, shutdown_timeout=1.0
    )
    collector_task: asyncio.Task[None] | None = None
    workload_tasks: list[asyncio.Task[None]] = []
    scratch = None
    try:
        await _ensure_namespaces(ctx)
        collector_task = asyncio.create_task(Collector(ctx).run(), name="apiserver-gc")
        node_agent = Kubelet(ctx, kubelet or KubeletSettings())
        await node_agent.register_nodes()  # before serving: clients see the nodes at once
        workload_tasks = [
            asyncio.create_task(ControllerManager(ctx).run(), name="apiserver-controllers"),
            asyncio.create_task(node_agent.run(), name="apiserver-kubelet"),
        ]
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        url = f"http://{host}:{bound}"
        if kubeconfig_path is None:
            scratch = tempfile.TemporaryDirectory(prefix="engine-apiserver-")
            kubeconfig_path = Path(scratch.name) / "kubeconfig"
        write_kubeconfig(kubeconfig_path, url=url, token=token or LOCAL_TOKEN)
        yield RunningApiServer(
            url=url, kubeconfig_path=kubeconfig_path, port=bound, token_required=token is not None
        )
    finally:
        for task in [*workload_tasks, *([collector_task] if collector_task else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await store.close()
        await runner.cleanup()
        if log is not None:
            log.close()
        if scratch is not None:
            scratch.cleanup()
