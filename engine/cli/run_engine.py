"""What `engine run` does, in order: start the embedded API server (with --local) and, for
the example Site, its registry (unless given a URL); connect, install the operator's CRD
and the samples, run the Controller with a live view until stopped, then shut everything
down in reverse.

With an operator that declares webhooks (admission handlers or served versions), the
journal is opened first and shared: the webhook server starts before anything is
installed, and with --local its configurations (a URL client config and the engine's CA
as caBundle) and the CRD's conversion are applied to the embedded server before the
samples are created, with no manual step.

State under the state dir: `apiserver.db` (--local), `kubeconfig` (--local),
`registry.json` (in-process registry), `journal.db` (the engine's journal),
`webhook-certs/` (the webhooks' CA and serving certificate). A re-run on the same dir
resumes all of them, so no completed effect runs twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console

from engine import Operator, Settings
from engine.cli import live_view, printer_columns
from engine.cli.start_collector import StartCollector
from engine.cli.view_rows import ChangedRows, keep_listing, view_rows, wait_established
from engine.effects.install import (
    Collection,
    InstallError,
    KubeApi,
    apply_definition,
    create_if_missing,
    wait_until_served,
)
from engine.example.registry_client import RegistryClient
from engine.example.site import site_operator
from engine.hosting import build_controller, open_journal_for, operator_webhooks
from engine.journal.errors import JournalError
from engine.journal.store import Journal
from engine.runtime.manager.start_scan import EarlyScan
from engine.telemetry.logging import configure_logging
from engine.telemetry.metrics import EngineMetrics
from engine.telemetry.otel_config import TelemetryConfigError
from engine.telemetry.setup import configure_tracing
from engine.watchers import (
    ClusterConfigError,
    ClusterUnreachableError,
    connect_in_cluster,
    connect_kubeconfig,
)
from engine.webhooks.configurations import ClientConfig, crd_with_conversion


class CannotRun(click.ClickException):
    """What the run needs is missing or unusable (the cluster, the journal, a database,
    a certificate): bad input, exit code 2, in one line naming it and what to do."""

    exit_code = 2


@dataclass(frozen=True)
class RunPlan:
    """One `engine run`: settings plus the choices only the command line makes.

    `example`: `operator` is the example Site, run with a client of its registry (started
    in-process unless `registry_url` is given)."""

    settings: Settings
    operator: Operator
    example: bool
    local: bool
    samples_dir: Path | None
    registry_url: str | None
    duration: float | None
    plain: bool
    rbac: bool = False  # --local --rbac: RBAC over HTTPS, the engine as its ServiceAccount
    early_scan: EarlyScan | None = None
    """The journal's start-up scan, begun before this module was imported (`run_cmd`)."""


def collection_of(operator: Operator) -> Collection:
    """Where the operator's custom resources live."""
    resource = operator.resource
    return Collection(
        resource.group, resource.version, resource.plural, namespaced=resource.namespaced
    )


def read_samples(directory: Path, kind: str) -> list[dict[str, Any]]:
    """Every `kind` document in `directory`'s *.yaml files, in file-name order.

    Errors: `click.ClickException` naming a file that is not YAML or holds something else.
    """
    samples: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        except (OSError, yaml.YAMLError) as error:
            raise click.ClickException(f"sample {path} cannot be read: {error}") from None
        for document in documents:
            if not isinstance(document, dict) or document.get("kind") != kind:
                raise click.ClickException(
                    f"sample {path} holds something other than a {kind}; "
                    "remove it or pass --no-samples"
                )
            samples.append(document)
    return samples


async def run_engine(plan: RunPlan) -> None:
    """Run until SIGINT/SIGTERM or `plan.duration`; every failure becomes a ClickException."""
    collector = StartCollector()
    collector.pause()  # until the controller is ready (see start_collector)
    console = Console(force_terminal=False if plan.plain else None, highlight=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.enter_context(_engine_log(plan.settings, console))
            api, admin = await stack.enter_async_context(_cluster(plan, console))
            operator = plan.operator
            if plan.example:
                registry_url = plan.registry_url
                if registry_url is None:
                    state_dir = plan.settings.state_dir
                    registry_url = await stack.enter_async_context(_registry(state_dir))
                console.print(f"example registry at {registry_url}")
                registry = await stack.enter_async_context(RegistryClient(registry_url))
                operator = site_operator(registry)
            metrics = EngineMetrics()
            journal: Journal | None = None
            crd = operator.resource.crd()
            if operator.serves_webhooks:
                journal = await open_journal_for(operator, plan.settings)
                stack.push_async_callback(journal.close)
                webhooks = await stack.enter_async_context(
                    operator_webhooks(
                        operator,
                        settings=plan.settings,
                        journal=journal,
                        metrics=metrics,
                        api=admin if plan.local else None,
                        registration="url" if plan.local else "service",
                        host="127.0.0.1" if plan.local else None,
                    )
                )
                assert webhooks is not None
                console.print(f"webhooks at {webhooks.url}")
                # the CRD the engine applies converts through its webhook server: by URL
                # on the embedded server, through `webhook_service` on a cluster (with
                # cert-manager the CA is left to its injector)
                client: ClientConfig | None = ClientConfig(url=webhooks.url, ca_pem=webhooks.ca_pem)
                if not plan.local:
                    from engine.webhooks.setup import service_client

                    self_signed = plan.settings.webhook_certificates == "self-signed"
                    ca_pem = webhooks.ca_pem if self_signed else None
                    client = service_client(plan.settings, ca_pem)
                if client is not None:
                    crd = crd_with_conversion(operator, client)
            await _install(api, admin, plan, console, crd=crd)
            await _serve(
                api,
                operator,
                plan=plan,
                stop=stop,
                console=console,
                metrics=metrics,
                journal=journal,
                collector=collector,
            )
    except _start_errors(plan.operator) as error:
        raise CannotRun(str(error)) from None
    except sqlite3.DatabaseError as error:
        raise CannotRun(
            f"the API server database in {plan.settings.state_dir} is not usable: {error}; "
            "move it away or pass another --state-dir"
        ) from None
    finally:
        collector.resume()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    console.print("engine stopped", highlight=False)


def _start_errors(operator: Operator) -> tuple[type[Exception], ...]:
    """The errors a run reports as `CannotRun`; the webhook server's certificate errors
    only for an operator that serves webhooks (only such a run imports that server)."""
    errors: tuple[type[Exception], ...] = (
        ClusterConfigError,
        ClusterUnreachableError,
        InstallError,
        JournalError,
    )
    if not operator.serves_webhooks:
        return errors
    from engine.webhooks.certificates import CertificateError

    return (*errors, CertificateError)


@contextlib.asynccontextmanager
async def _cluster(plan: RunPlan, console: Console) -> AsyncIterator[tuple[KubeApi, KubeApi]]:
    """The engine's client and the administrator's (the same one unless --rbac)."""
    settings = plan.settings
    admin: KubeApi | None = None
    async with contextlib.AsyncExitStack() as stack:
        if plan.local:
            # only --local needs the embedded API server: a run against a cluster does
            # not import it
            from engine.apiserver.http.embedded import serve_apiserver
            from engine.cli import local_rbac

            state_dir = _state_dir(settings.state_dir)
            kubeconfig = state_dir / "kubeconfig"
            try:
                server = await stack.enter_async_context(
                    serve_apiserver(
                        db=str(state_dir / "apiserver.db"),
                        kubeconfig_path=kubeconfig,
                        security=local_rbac.server_options(state_dir) if plan.rbac else None,
                    )
                )
            except OSError as error:
                raise click.ClickException(f"cannot start the API server: {error}") from None
            console.print(f"embedded API server at {server.url} (state in {state_dir})")
            plural = plan.operator.resource.plural
            console.print(f"use it with: kubectl --kubeconfig {kubeconfig} get {plural}")
            api = await connect_kubeconfig(kubeconfig)
            if plan.rbac:
                admin = api
                stack.push_async_callback(admin.close)
                engine_kubeconfig = await local_rbac.enroll(admin, server, state_dir)
                console.print(f"RBAC on: the engine connects with {engine_kubeconfig}")
                api = await connect_kubeconfig(engine_kubeconfig)
        elif settings.in_cluster:
            api = await connect_in_cluster()
        else:
            assert settings.kubeconfig is not None
            api = await connect_kubeconfig(settings.kubeconfig)
        stack.push_async_callback(api.close)
        yield api, admin or api


@contextlib.contextmanager
def _engine_log(settings: Settings, console: Console) -> Iterator[None]:
    """Log lines go to `<state dir>/engine.log` (not the terminal the live view draws on)."""
    log_path = _state_dir(settings.state_dir) / "engine.log"
    try:
        log_file = log_path.open("a", encoding="utf-8")
    except OSError as error:
        raise CannotRun(
            f"state dir {log_path.parent} is not writable ({error.strerror}): the engine "
            "keeps its log, journal and database there; pass a writable --state-dir"
        ) from None
    with log_file:
        handler = configure_logging(fmt=settings.log_format, level="INFO", stream=log_file)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        console.print(f"engine log: {log_path}")
        try:
            yield
        finally:
            logging.getLogger().removeHandler(handler)


@contextlib.asynccontextmanager
async def _registry(state_dir: Path) -> AsyncIterator[str]:
    # only a run without --registry-url serves the example registry
    from engine.example.registry_service import serve_registry

    state = _state_dir(state_dir) / "registry.json"
    try:
        async with serve_registry(state_path=state) as running:
            yield running.url
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def _state_dir(path: Path) -> Path:
    try:
        # The journal and the API server's database hold object specs: owner-only (R16).
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise CannotRun(
            f"state dir {path} cannot be created: {error.strerror}; pass another --state-dir"
        ) from None
    return path.resolve()


async def _install(
    api: KubeApi, admin: KubeApi, plan: RunPlan, console: Console, *, crd: Mapping[str, Any]
) -> None:
    resource = plan.operator.resource
    collection = collection_of(plan.operator)
    # on the embedded server the administrator installs the CRD (with --rbac the engine's
    # own roles may not list CRDs); on a real cluster the engine applies its own
    installer = admin if plan.local else api
    await apply_definition(installer, crd)
    if plan.local:
        await wait_established(installer, f"{resource.plural}.{resource.group}")
    await wait_until_served(api, collection)
    if plan.samples_dir is None:
        return
    for sample in read_samples(plan.samples_dir, resource.kind):
        outcome = await create_if_missing(admin, collection, sample)
        metadata = sample.get("metadata") or {}
        console.print(
            f"sample {metadata.get('namespace', 'default')}/{metadata.get('name')}: {outcome}"
        )


def tracing_env(env: Mapping[str, str], *, local: bool) -> Mapping[str, str]:
    """`env` for the tracer; with --local and no OTLP variable set, export nothing (a
    laptop has no collector: set OTEL_EXPORTER_OTLP_ENDPOINT to send traces to one)."""
    chosen = (
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    )
    if local and not any(env.get(name) for name in chosen):
        return {**env, "OTEL_TRACES_EXPORTER": "none"}
    return env


async def _serve(
    api: KubeApi,
    operator: Operator,
    *,
    plan: RunPlan,
    stop: asyncio.Event,
    console: Console,
    metrics: EngineMetrics,
    journal: Journal | None,
    collector: StartCollector,
) -> None:
    """Run the Controller and the live view until `stop` (a signal or the duration); the
    collector paused for the start resumes once the controller is ready."""
    settings = plan.settings
    try:
        tracing = configure_tracing(
            service_name_default="engine",
            env=tracing_env(os.environ, local=plan.local),
            on_spans_lost=metrics.count_spans_dropped,
        )
    except TelemetryConfigError as error:
        raise click.ClickException(str(error)) from None
    controller = build_controller(
        operator,
        settings=settings,
        api_client=api,
        journal=journal,
        metrics=metrics,
        tracing=tracing,
        early_scan=plan.early_scan if journal is None else None,
    )
    running = asyncio.create_task(controller.run(), name="controller")
    if plan.duration is not None:
        asyncio.get_running_loop().call_later(plan.duration, stop.set)
    stopped = asyncio.create_task(stop.wait())
    ready = asyncio.create_task(controller.ready.wait())
    await asyncio.wait({running, stopped, ready}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    collector.resume()
    if controller.ready.is_set() and controller.health_url:
        console.print(f"health: {controller.health_url}/healthz, /readyz, /metrics")
    # Printer columns only in the live table on a terminal: the plain lines never show
    # them, so a pod (or a pipe) never LISTs its resources every second.
    shown = console.is_terminal
    columns = printer_columns.extra_columns(operator.resource.printer_columns) if shown else ()
    objects: dict[str, Mapping[str, Any]] = {}
    listing = asyncio.create_task(keep_listing(api, collection_of(operator), objects))
    if not columns:
        listing.cancel()
    view = asyncio.create_task(
        live_view.show(
            lambda: view_rows(controller.snapshot(), columns=columns, objects=objects),
            stop=stop,
            console=console,
            title=f"{operator.resource.kind}s (state in {settings.state_dir}; Ctrl-C to stop)",
            columns=printer_columns.headers(columns),
            changes=ChangedRows(controller.changed_since),
        )
    )
    await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    await view
    listing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listing
    await controller.stop()
    try:
        await running
    except OSError as error:
        raise click.ClickException(
            f"the engine could not start: {error.strerror or error}; if the health port "
            f"{settings.health_port} is taken, pass --health-port 0"
        ) from None
    stopped.cancel()
