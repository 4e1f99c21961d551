"""Run the API server inside the current event loop: `serve_apiserver` starts it on a
loopback port, writes a kubeconfig, and stops it cleanly on exit."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from engine.apiserver.admission.dispatcher import Webhooks
from engine.apiserver.controllers.manager import ControllerManager
from engine.apiserver.gc.collector import Collector
from engine.apiserver.http.app import build_app
from engine.apiserver.http.audit import AuditLog
from engine.apiserver.http.auth import LOCAL_TOKEN
from engine.apiserver.http.kubeconfig import write_kubeconfig
from engine.apiserver.http.security import SecurityOptions, build_security, ensure_default_policy
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
    """A started server: its base URL (https with TLS on), the kubeconfig written for it,
    the bound port, whether clients must send the kubeconfig's bearer token, the plain
    HTTP URL (on loopback when TLS is on), the CA clients trust (PEM) and the admin token."""

    url: str
    kubeconfig_path: Path
    port: int
    token_required: bool = False
    plain_url: str = ""
    ca_pem: bytes | None = None
    admin_token: str | None = None
    service_account_token: Callable[[str, str, int], str] | None = None
    """(namespace, name, seconds) -> a token for that stored ServiceAccount (KeyError if
    it does not exist), as the TokenRequest subresource issues it."""


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
    security: SecurityOptions | None = None,
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
    `security` adds kube-apiserver's authentication, RBAC and TLS options
    (http/security.py); with TLS on, the kubeconfig names the HTTPS URL and its CA, and
    plain HTTP is served on 127.0.0.1 at `port`.
    """
    settings = settings or Settings()
    store = await Store.open(db, retention=settings.retention)
    registry = Registry()
    registry.refresh(_crds(store))

    def refresh_types(changes: Sequence[Change]) -> None:
        if any(change.key.startswith(CRD_KEY_PREFIX) for change in changes):
            registry.refresh(_crds(store))

    store.add_listener(refresh_types)
    webhooks = Webhooks(store)
    ctx = ApiContext(store=store, registry=registry, settings=settings, webhooks=webhooks)
    log = AuditLog(audit_log) if audit_log is not None else None
    options = security or SecurityOptions()
    collector_task: asyncio.Task[None] | None = None
    workload_tasks: list[asyncio.Task[None]] = []
    scratch = None
    runner: web.AppRunner | None = None
    try:
        if kubeconfig_path is None:
            scratch = tempfile.TemporaryDirectory(prefix="engine-apiserver-")
            kubeconfig_path = Path(scratch.name) / "kubeconfig"
        secured = build_security(
            ctx, options, host=host, token=token, state_dir=kubeconfig_path.parent / "pki"
        )
        runner = web.AppRunner(
            build_app(ctx, audit_log=log, security=secured),
            handle_signals=False,
            shutdown_timeout=1.0,
        )
        await _ensure_namespaces(ctx)
        if options.rbac:
            await ensure_default_policy(ctx)
        collector_task = asyncio.create_task(Collector(ctx).run(), name="apiserver-gc")
        node_agent = Kubelet(ctx, kubelet or KubeletSettings())
        await node_agent.register_nodes()  # before serving: clients see the nodes at once
        workload_tasks = [
            asyncio.create_task(ControllerManager(ctx).run(), name="apiserver-controllers"),
            asyncio.create_task(node_agent.run(), name="apiserver-kubelet"),
        ]
        await runner.setup()
        if secured.certificate is not None:
            tls = secured.certificate.ssl_context()
            await web.TCPSite(runner, host, options.secure_port or 0, ssl_context=tls).start()
            bound = runner.addresses[-1][1]
            url = f"https://{host}:{bound}"
            await web.TCPSite(runner, "127.0.0.1", port).start()
            plain_url = f"http://127.0.0.1:{runner.addresses[-1][1]}"
        else:
            await web.TCPSite(runner, host, port).start()
            bound = runner.addresses[0][1]
            url = plain_url = f"http://{host}:{bound}"
        ca_pem = secured.certificate.ca_pem if secured.certificate is not None else None

        def service_account_token(namespace: str, name: str, seconds: int) -> str:
            account = store.get(f"/serviceaccounts/{namespace}/{name}")
            if account is None:
                raise KeyError(f"serviceaccount {namespace}/{name}")
            return secured.tokens.issue(account, expiration_seconds=seconds).token

        write_kubeconfig(
            kubeconfig_path, url=url, token=secured.admin_token or LOCAL_TOKEN, ca_pem=ca_pem
        )
        yield RunningApiServer(
            url=url,
            kubeconfig_path=kubeconfig_path,
            port=bound,
            token_required=secured.admin_token is not None,
            plain_url=plain_url,
            ca_pem=ca_pem,
            admin_token=secured.admin_token,
            service_account_token=service_account_token,
        )
    finally:
        for task in [*workload_tasks, *([collector_task] if collector_task else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await webhooks.close()
        await store.close()
        if runner is not None:
            await runner.cleanup()
        if log is not None:
            log.close()
        if scratch is not None:
            scratch.cleanup()
