"""Hosting an operator: a `Controller` for it, its webhook server when it declares
admission handlers or served versions, and `run`, the public coroutine that runs one
until it is cancelled or the process is signalled.

The one module (besides the public `engine` names) that reaches into the runtime's
composition, so that tools above it (the CLI, the test kit) name no runtime internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engine import Operator, Settings, load_settings
from engine.clock import Clock, SystemClock
from engine.effects.install import KubeApi
from engine.journal.store import Journal
from engine.runtime.manager.controller import Controller, ControllerDeps, open_engine_journal
from engine.runtime.manager.start_scan import EarlyScan
from engine.telemetry.metrics import EngineMetrics
from engine.telemetry.setup import TracingHandle
from engine.watchers import connect_in_cluster, connect_kubeconfig
from engine.webhooks.configurations import ClientConfig

if TYPE_CHECKING:  # the webhook server and its certificates load only where served
    from engine.webhooks.server import RunningWebhooks

Registration = Literal["url", "service"]


def build_controller(
    operator: Operator,
    *,
    settings: Settings,
    api_client: Any = None,
    journal: Journal | None = None,
    clock: Clock | None = None,
    metrics: EngineMetrics | None = None,
    tracing: TracingHandle | None = None,
    serve_health: bool = True,
    handle_signals: bool = False,
    early_scan: EarlyScan | None = None,
) -> Controller:
    """A `Controller` for `operator` (not started: call `run()` on it).

    `api_client` None: connect from `settings`; `journal` None: open
    `<settings.state_dir>/journal.db`; `early_scan`: its start-up scan, begun already.
    """
    return Controller(
        ControllerDeps(
            operator=operator,
            settings=settings,
            api_client=api_client,
            journal=journal,
            clock=clock or SystemClock(),
            metrics=metrics,
            tracing=tracing,
            serve_health=serve_health,
            handle_signals=handle_signals,
            early_scan=early_scan,
        )
    )


async def open_journal_for(
    operator: Operator, settings: Settings, *, clock: Clock | None = None
) -> Journal:
    """The journal the engine for `operator` uses (the caller closes it), opened once so
    the webhook server and the Controller share it."""
    return await open_engine_journal(settings, operator, clock=clock or SystemClock())


def webhook_client(
    running: RunningWebhooks, settings: Settings, registration: Registration
) -> ClientConfig | None:
    """How the API server reaches `running`: its URL (the embedded server, on this
    machine) or the `webhook_service` Service; None when the service is not set."""
    from engine.webhooks.setup import service_client

    if registration == "url":
        return ClientConfig(url=running.url, ca_pem=running.ca_pem)
    return service_client(settings, running.ca_pem)


@contextlib.asynccontextmanager
async def operator_webhooks(
    operator: Operator,
    *,
    settings: Settings,
    journal: Journal,
    metrics: EngineMetrics | None,
    api: KubeApi | None = None,
    registration: Registration = "service",
    host: str | None = None,
) -> AsyncIterator[RunningWebhooks | None]:
    """Serve `operator`'s webhooks (None: it declares none) until the context exits.

    With `api` (and, for "service", with self-signed certificates and `webhook_service`
    set) the webhook configurations and the CRD's conversion are applied with the CA as
    caBundle, and applied again whenever the CA is renewed. With cert-manager nothing is
    applied: the manifests hold them and its CA injector fills caBundle.
    Errors: `CertificateError`, `OSError` (the port), `InstallError` (registration).
    """
    if not operator.serves_webhooks:
        yield None
        return
    from engine.webhooks.registration import register_webhooks
    from engine.webhooks.server import serve_webhooks
    from engine.webhooks.setup import server_deps

    registering = api is not None and settings.webhook_certificates == "self-signed"
    holder: list[RunningWebhooks] = []

    async def register(ca_pem: bytes) -> None:
        if not registering or not holder or api is None:
            return
        holder[0].ca_pem = ca_pem
        client = webhook_client(holder[0], settings, registration)
        if client is not None:
            await register_webhooks(
                api,
                operator,
                client,
                failure_policy=settings.webhook_failure_policy,
                timeout_seconds=settings.webhook_timeout_seconds,
            )

    deps = server_deps(
        operator, settings, journal=journal, metrics=metrics, host=host, on_new_ca=register
    )
    async with serve_webhooks(deps) as running:
        holder.append(running)
        await register(running.ca_pem)
        yield running


async def _connect(settings: Settings) -> KubeApi:
    if settings.in_cluster:
        return await connect_in_cluster()
    return await connect_kubeconfig(settings.kubeconfig or Path.home() / ".kube" / "config")


async def run(operator: Operator, settings: Settings | None = None) -> None:
    """Run `operator` until this coroutine is cancelled or SIGTERM/SIGINT arrives.

    `settings` None: the defaults overlaid by `ENGINE_*` environment variables. Signals
    are handled only when called on the main thread. On cancellation the engine stops
    gracefully (watches, then in-flight reconciles, then the journal) before the
    `CancelledError` propagates. Errors: the start-up errors of the Controller (an
    unreachable cluster, an unusable journal), each naming what to do.
    """
    chosen = settings if settings is not None else load_settings(env=os.environ, overrides={})
    async with contextlib.AsyncExitStack() as stack:
        journal: Journal | None = None
        metrics = EngineMetrics()
        if operator.serves_webhooks:
            journal = await open_journal_for(operator, chosen)
            stack.push_async_callback(journal.close)
            api = None
            if chosen.webhook_service:
                api = await _connect(chosen)
                stack.push_async_callback(api.close)
            await stack.enter_async_context(
                operator_webhooks(
                    operator, settings=chosen, journal=journal, metrics=metrics, api=api
                )
            )
        controller = build_controller(
            operator,
            settings=chosen,
            journal=journal,
            metrics=metrics,
            handle_signals=threading.current_thread() is threading.main_thread(),
        )
        running = asyncio.create_task(controller.run(), name="engine")
        try:
            await asyncio.shield(running)
        except asyncio.CancelledError:
            await controller.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            raise
