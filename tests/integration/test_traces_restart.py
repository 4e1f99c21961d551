"""Traces across a restart: the first reconcile of a resource in a new engine process
follows the newest reconcile span the journal recorded before the restart (the link is
read from the journal, not kept in memory)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from engine.apiserver.http.embedded import serve_apiserver
from engine.fsm import events as ev
from engine.journal.record import Record
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.telemetry import EngineMetrics, configure_tracing
from engine.telemetry.spans import SpanIds
from engine.watchers import connect_kubeconfig
from tests.integration.reconcile_support import (
    WIDGETS,
    Api,
    ExternalService,
    eventually,
    fast_settings,
    install_crd,
    widget_operator,
)
from tests.support.otlp_receiver import OtlpReceiver

RECONCILE = "reconcile Widget"


@asynccontextmanager
async def traced_controller(
    tmp_path: Path, journal: SqliteJournal, receiver: OtlpReceiver, service: ExternalService
) -> AsyncIterator[Controller]:
    """A Controller on `journal`, exporting to `receiver`; stopped (and its tracing
    flushed and shut down) on exit, the journal left open."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    metrics = EngineMetrics()
    tracing = configure_tracing(service_name_default="engine", env=env)
    client = await connect_kubeconfig(tmp_path / "kubeconfig")
    controller = Controller(
        ControllerDeps(
            operator=widget_operator(service),
            settings=fast_settings(tmp_path),
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
        yield controller
    finally:
        await controller.stop()
        await task
        await client.close()
        tracing.shutdown()


async def records_of(journal: SqliteJournal) -> list[Record]:
    return [record async for record in journal.read_all()]


async def test_the_first_reconcile_after_a_restart_follows_a_span_journaled_before_it(
    tmp_path: Path,
) -> None:
    service = ExternalService()
    with OtlpReceiver() as receiver:
        async with (
            serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
            aiohttp.ClientSession() as session,
        ):
            api = Api(session, server.url)
            await install_crd(api, widget_operator(service))
            journal = await SqliteJournal.open(tmp_path / "journal.db", synchronous="NORMAL")
            try:

                async def phase_is(phase: str, generation: int) -> bool:
                    widget = await api.get(f"{WIDGETS}/blue")
                    status = (widget or {}).get("status") or {}
                    return (
                        status.get("phase") == phase
                        and status.get("observedGeneration") == generation
                    )

                async with traced_controller(tmp_path, journal, receiver, service):
                    await api.create_widget("blue", size=2)
                    await eventually(lambda: phase_is("Ready", 1), "blue is Ready")
                before = await records_of(journal)
                spans_before = {s.span_id for s in receiver.spans}
                await api.merge(f"{WIDGETS}/blue", {"spec": {"size": 3}})
                async with traced_controller(tmp_path, journal, receiver, service):
                    await eventually(lambda: phase_is("Ready", 2), "blue is Ready again")
                after = (await records_of(journal))[len(before) :]
            finally:
                await journal.close()
        spans = receiver.spans

    journaled_before = {
        ids
        for r in before
        if (ids := SpanIds.parse(r.trace_id, r.span_id)) is not None
        and not (r.type == ev.OBSERVED and r.data["watch_event"] != "reconcile")
    }
    assert journaled_before, "the first run journaled no span ids"
    newest = next(
        SpanIds.parse(r.trace_id, r.span_id)
        for r in reversed(before)
        if not (r.type == ev.OBSERVED and r.data["watch_event"] != "reconcile")
    )
    new_reconciles = {
        s.span_id: s for s in spans if s.name == RECONCILE and s.span_id not in spans_before
    }
    # the first reconcile of the second run: the first whose ids the journal holds
    first = next(new_reconciles[r.span_id] for r in after if r.span_id in new_reconciles)
    links = [SpanIds(link.trace_id, link.span_id) for link in first.links]
    assert links == [newest]
    assert links[0] in journaled_before
    assert first.links[0].attributes == {"link.reason": "follows"}
    # and it is the only one of the second run that reaches back before the restart
    reaching_back = [
        s for s in new_reconciles.values() if any(link.span_id in spans_before for link in s.links)
    ]
    assert reaching_back == [first]
