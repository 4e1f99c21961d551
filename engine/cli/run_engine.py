"""What `engine run` does, in order: start the embedded API server (with --local) and the
example registry (unless given a URL), connect, install the Site CRD and the samples, run
the Controller with a live view until stopped, then shut everything down in reverse.

State under the state dir: `apiserver.db` (--local), `kubeconfig` (--local),
`registry.json` (in-process registry), `journal.db` (the engine's journal). A re-run on
the same dir resumes all of them, so no completed effect runs twice.
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
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console

from engine.apiserver.http.embedded import serve_apiserver
from engine.cli import live_view, local_rbac
from engine.effects.install import (
    Collection,
    InstallError,
    KubeApi,
    apply_definition,
    create_if_missing,
    wait_until_served,
)
from engine.example.registry_client import RegistryClient
from engine.example.registry_service import serve_registry
from engine.example.site import site_operator
from engine.example.site_resource import SITE
from engine.runtime.controller import Controller, ControllerDeps
from engine.runtime.settings import Settings
from engine.telemetry.logging import configure_logging
from engine.telemetry.metrics import EngineMetrics
from engine.telemetry.settings import TelemetryConfigError
from engine.telemetry.setup import configure_tracing
from engine.watchers import (
    ClusterConfigError,
    ClusterUnreachableError,
    connect_in_cluster,
    connect_kubeconfig,
)

SITES = Collection(SITE.group, SITE.version, SITE.plural, namespaced=SITE.namespaced)


@dataclass(frozen=True)
class RunPlan:
    """One `engine run`: settings plus the choices only the command line makes."""

    settings: Settings
    local: bool
    samples_dir: Path | None
    registry_url: str | None
    duration: float | None
    plain: bool
    rbac: bool = False  # --local --rbac: RBAC over HTTPS, the engine as its ServiceAccount


def read_samples(directory: Path) -> list[dict[str, Any]]:
    """Every Site document in `directory`'s *.yaml files, in file-name order.

    Errors: `click.ClickException` naming a file that is not YAML or holds something else.
    """
    samples: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        except (OSError, yaml.YAMLError) as error:
            raise click.ClickException(f"sample {path} cannot be read: {error}") from None
        for document in documents:
            if not isinstance(document, dict) or document.get("kind") != SITE.kind:
                raise click.ClickException(
                    f"sample {path} holds something other than a {SITE.kind}; "
                    "remove it or pass --no-samples"
                )
            samples.append(document)
    return samples


async def run_engine(plan: RunPlan) -> None:
    """Run until SIGINT/SIGTERM or `plan.duration`; every failure becomes a ClickException."""
    console = Console(force_terminal=False if plan.plain else None, highlight=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.enter_context(_engine_log(plan.settings, console))
            api, admin = await stack.enter_async_context(_cluster(plan, console))
            registry_url = plan.registry_url
            if registry_url is None:
                registry_url = await stack.enter_async_context(_registry(plan.settings.state_dir))
            console.print(f"example registry at {registry_url}")
            await _install(api, admin, plan, console)
            registry = await stack.enter_async_context(RegistryClient(registry_url))
            await _serve(api, registry, plan=plan, stop=stop, console=console)
    except (ClusterConfigError, ClusterUnreachableError, InstallError) as error:
        raise click.ClickException(str(error)) from None
    except sqlite3.DatabaseError as error:
        raise click.ClickException(
            f"the API server database in {plan.settings.state_dir} is not usable: {error}; "
            "move it away or pass another --state-dir"
        ) from None
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    console.print("engine stopped", highlight=False)


@contextlib.asynccontextmanager
async def _cluster(plan: RunPlan, console: Console) -> AsyncIterator[tuple[KubeApi, KubeApi]]:
    """The engine's client and the administrator's (the same one unless --rbac)."""
    settings = plan.settings
    admin: KubeApi | None = None
    async with contextlib.AsyncExitStack() as stack:
        if plan.local:
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
            console.print(f"use it with: kubectl --kubeconfig {kubeconfig} get sites")
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
    with log_path.open("a", encoding="utf-8") as log_file:
        handler = configure_logging(fmt=settings.log_format, level="INFO", stream=log_file)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        console.print(f"engine log: {log_path}")
        try:
            yield
        finally:
            logging.getLogger().removeHandler(handler)


@contextlib.asynccontextmanager
async def _registry(state_dir: Path) -> AsyncIterator[str]:
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
        raise click.ClickException(
            f"state dir {path} cannot be created: {error.strerror}; pass another --state-dir"
        ) from None
    return path.resolve()


async def _install(api: KubeApi, admin: KubeApi, plan: RunPlan, console: Console) -> None:
    await apply_definition(api, SITE.crd())
    await wait_until_served(api, SITES)
    if plan.samples_dir is None:
        return
    for sample in read_samples(plan.samples_dir):
        outcome = await create_if_missing(admin, SITES, sample)
        metadata = sample.get("metadata") or {}
        console.print(
            f"sample {metadata.get('namespace', 'default')}/{metadata.get('name')}: {outcome}"
        )


def tracing_env(env: Mapping[str, str], *, local: bool) -> Mapping[str, str]:
    """`env` for the tracer; with --local and no OTLP variable set, export nothing (a
    laptop has no collector: set OTEL_EXPORTER_OTLP_ENDPOINT to send traces to one)."""
    chosen = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
              "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")  # fmt: skip
    if local and not any(env.get(name) for name in chosen):
        return {**env, "OTEL_TRACES_EXPORTER": "none"}
    return env


def view_rows(controller: Controller) -> list[live_view.ViewRow]:
    """The controller's resources as the live view's rows."""
    return [
        live_view.ViewRow(
            namespace=view.namespace,
            name=view.name,
            state=view.state,
            generation=view.generation,
            last_event=view.last_event,
            created_at=_epoch(view.created),
        )
        for view in controller.snapshot()
    ]


def _epoch(timestamp: str) -> float | None:
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def _serve(
    api: KubeApi, registry: RegistryClient, *, plan: RunPlan, stop: asyncio.Event, console: Console
) -> None:
    """Run the Controller and the live view until `stop` (a signal or the duration)."""
    settings = plan.settings
    metrics = EngineMetrics()
    try:
        tracing = configure_tracing(
            service_name_default="engine",
            env=tracing_env(os.environ, local=plan.local),
            on_spans_lost=metrics.count_spans_dropped,
        )
    except TelemetryConfigError as error:
        raise click.ClickException(str(error)) from None
    controller = Controller(
        ControllerDeps(
            operator=site_operator(registry),
            settings=settings,
            api_client=api,
            metrics=metrics,
            tracing=tracing,
            handle_signals=False,
        )
    )
    running = asyncio.create_task(controller.run(), name="controller")
    if plan.duration is not None:
        asyncio.get_running_loop().call_later(plan.duration, stop.set)
    stopped = asyncio.create_task(stop.wait())
    ready = asyncio.create_task(controller.ready.wait())
    await asyncio.wait({running, stopped, ready}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if controller.ready.is_set() and controller.health_url:
        console.print(f"health: {controller.health_url}/healthz, /readyz, /metrics")
    view = asyncio.create_task(
        live_view.show(
            lambda: view_rows(controller),
            stop=stop,
            console=console,
            title=f"Sites (state in {settings.state_dir}; Ctrl-C to stop)",
        )
    )
    await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    await view
    await controller.stop()
    try:
        await running
    except OSError as error:
        raise click.ClickException(
            f"the engine could not start: {error.strerror or error}; if the health port "
            f"{settings.health_port} is taken, pass --health-port 0"
        ) from None
    stopped.cancel()
