"""A Controller wired the way `engine run` wires it (tracing from OTEL_* variables,
EngineMetrics, the health server, JSON log lines), against the embedded API server and
the Widget test operator, for the telemetry tests of a real engine run."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from engine.apiserver.http.embedded import serve_apiserver
from engine.journal.record import Record
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.reconcile.operator import Operator
from engine.telemetry import EngineMetrics, TracingHandle, configure_logging, configure_tracing
from engine.watchers import connect_kubeconfig
from tests.integration.reconcile_support import (
    Api,
    ExternalService,
    fast_settings,
    install_crd,
    widget_operator,
)


@dataclass
class TelemetryEngine:
    """A running engine with its telemetry: what the tests drive and look at."""

    api: Api
    controller: Controller
    service: ExternalService
    journal: SqliteJournal
    tracing: TracingHandle
    metrics: EngineMetrics
    logs: io.StringIO
    task: asyncio.Task[None]

    async def records(self) -> list[Record]:
        return [record async for record in self.journal.read_all()]

    def log_lines(self) -> list[dict[str, Any]]:
        """Every JSON log line written so far (each must parse: one record, one line)."""
        return [json.loads(line) for line in self.logs.getvalue().splitlines() if line]


@asynccontextmanager
async def telemetry_engine(
    tmp_path: Path,
    *,
    otel_env: Mapping[str, str],
    service: ExternalService | None = None,
    operator: Operator | None = None,
    settings: Mapping[str, Any] | None = None,
) -> AsyncIterator[TelemetryEngine]:
    """The API server, the Widget CRD, and a Controller with tracing configured from
    `otel_env` (as `engine run` passes os.environ), metrics, /metrics served on a free
    loopback port, and JSON log lines captured. The engine is stopped on exit (a test
    may stop it first, e.g. to time the stop). `operator` replaces the Widget operator
    over `service`; `settings` changes the fast test settings."""
    service = service or ExternalService()
    operator = operator or widget_operator(service)
    logs = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(fmt="json", level="INFO", stream=logs)
    metrics = EngineMetrics()
    tracing = configure_tracing(
        service_name_default="engine", env=otel_env, on_spans_lost=metrics.count_spans_dropped
    )
    try:
        async with (
            serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
            aiohttp.ClientSession() as session,
        ):
            api = Api(session, server.url)
            await install_crd(api, operator)
            client = await connect_kubeconfig(server.kubeconfig_path)
            journal = await SqliteJournal.open(tmp_path / "journal.db", synchronous="NORMAL")
            controller = Controller(
                ControllerDeps(
                    operator=operator,
                    settings=fast_settings(tmp_path, **(settings or {})),
                    api_client=client,
                    journal=journal,
                    metrics=metrics,
                    tracing=tracing,
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
                yield TelemetryEngine(
                    api, controller, service, journal, tracing, metrics, logs, task
                )
            finally:
                await controller.stop()
                await task
                await journal.close()
                await client.close()
    finally:
        tracing.shutdown()
        root.removeHandler(handler)
        root.setLevel(level)
