"""/metrics of a real engine run: every metric family the engine promises, with values
that match what the run did, and gauges the runtime keeps up to date."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from engine.runtime.reconcile.handler_context import Context
from tests.integration.reconcile_support import (
    WIDGETS,
    ExternalService,
    eventually,
    widget_operator,
)
from tests.integration.telemetry_engine_support import TelemetryEngine, telemetry_engine

FAMILIES = {
    "engine_reconcile_duration_seconds": "histogram",
    "engine_reconciles": "counter",
    "engine_workqueue_depth": "gauge",
    "engine_workqueue_oldest_item_age_seconds": "gauge",
    "engine_retries": "counter",
    "engine_resources": "gauge",
    "engine_stuck_resources": "gauge",
    "engine_deadlocked_resources": "gauge",
    "engine_journal_append_duration_seconds": "histogram",
    "engine_journal_size_bytes": "gauge",
    "engine_journal_records": "gauge",
    "engine_watch_restarts": "counter",
    "engine_spans_dropped": "counter",
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(engine: TelemetryEngine) -> tuple[dict[str, str], Samples]:
    """GET /metrics from the engine's health server: family types and every sample."""
    assert engine.controller.health_url is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(engine.controller.health_url + "/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, keep: Callable[[dict[str, str]], bool]) -> float:
    return sum(v for (n, labels), v in samples.items() if n == name and keep(dict(labels)))


async def until_scraped(
    engine: TelemetryEngine, holds: Callable[[Samples], bool], what: str
) -> Samples:
    found: Samples = {}

    async def check() -> bool:
        nonlocal found
        _, found = await scrape(engine)
        return holds(found)

    await eventually(check, what)
    return found


async def test_metrics_report_reconciles_retries_states_queue_and_journal(tmp_path: Path) -> None:
    service = ExternalService(failures_left=1)
    widgets = widget_operator(service)
    gate = asyncio.Event()

    async def provision(ctx: Context) -> None:
        if ctx.name == "slow":
            await gate.wait()  # holds the only worker, so the other keys queue up
        assert widgets.provision is not None
        await widgets.provision(ctx)

    operator = dataclasses.replace(widgets, provision=provision)
    async with telemetry_engine(
        tmp_path,
        otel_env={"OTEL_SDK_DISABLED": "true"},
        service=service,
        operator=operator,
        settings={"max_concurrent_reconciles": 1, "watch_inactivity_seconds": 0.5},
    ) as engine:
        await engine.api.create_widget("slow", size=1)

        async def slow_provisioning() -> bool:
            return bool(service.calls) or any(
                v.state == "Provisioning" for v in engine.controller.snapshot()
            )

        await eventually(slow_provisioning, "slow is provisioning")
        for name in ("a", "b"):
            await engine.api.create_widget(name, size=2)
        queued = await until_scraped(
            engine,
            lambda s: (
                value(s, "engine_workqueue_depth") >= 2
                and value(s, "engine_workqueue_oldest_item_age_seconds") > 0
            ),
            "the queue gauges show the two waiting keys",
        )
        assert value(queued, "engine_workqueue_oldest_item_age_seconds") < 15
        gate.set()
        settled = await until_scraped(
            engine,
            lambda s: (
                value(s, "engine_resources", state="Ready") == 3
                and value(s, "engine_workqueue_depth") == 0
                and value(s, "engine_journal_records") > 0
                and total(s, "engine_watch_restarts_total", lambda _: True) > 0
            ),
            "three Ready, an empty queue, the journal's size, a watch restart",
        )
        types, _ = await scrape(engine)
        records = await engine.records()
        journal_file = tmp_path / "journal.db"
        assert journal_file.exists()

    for name, kind in FAMILIES.items():
        assert types.get(name) == kind, f"{name}: {types.get(name)} (want {kind})"
    widget = {"kind": "Widget"}
    reconciles = total(
        settled, "engine_reconciles_total", lambda labels: labels.items() >= widget.items()
    )
    assert reconciles >= 3  # at least one per widget (one reconcile may take it to Ready)
    outcomes = {
        dict(labels)["outcome"]
        for (name, labels), count in settled.items()
        if name == "engine_reconciles_total" and count > 0
    }
    # a Ready widget is requeued for its periodic resync; nothing failed or timed out
    assert "requeued" in outcomes
    assert "failed" not in outcomes
    assert total(settled, "engine_reconcile_duration_seconds_count", lambda _: True) == reconciles
    assert total(settled, "engine_reconcile_duration_seconds_sum", lambda _: True) > 0
    assert value(settled, "engine_retries_total", kind="Widget", effect="provision") == 1
    assert value(settled, "engine_workqueue_oldest_item_age_seconds") == 0
    assert value(settled, "engine_resources", state="Provisioning") == 0
    assert value(settled, "engine_stuck_resources") == 0
    assert value(settled, "engine_deadlocked_resources") == 0
    appends = value(settled, "engine_journal_append_duration_seconds_count")
    assert 0 < appends <= len(records)
    assert value(settled, "engine_journal_append_duration_seconds_sum") > 0
    assert 0 < value(settled, "engine_journal_records") <= len(records)
    assert value(settled, "engine_journal_size_bytes") >= 4096  # at least one SQLite page
    restarts = total(
        settled,
        "engine_watch_restarts_total",
        lambda labels: labels["kind"] in ("Widget", "ConfigMap"),
    )
    assert restarts == total(settled, "engine_watch_restarts_total", lambda _: True)


async def test_the_widgets_listed_in_metrics_match_the_api_server(tmp_path: Path) -> None:
    async with telemetry_engine(tmp_path, otel_env={"OTEL_SDK_DISABLED": "true"}) as engine:
        for name in ("one", "two"):
            await engine.api.create_widget(name, size=1)
        await until_scraped(
            engine,
            lambda s: value(s, "engine_resources", state="Ready") == 2,
            "two Ready widgets in the metrics",
        )
        assert await engine.api.delete(f"{WIDGETS}/one") == 200
        after = await until_scraped(
            engine,
            lambda s: value(s, "engine_resources", state="Ready") == 1,
            "one Ready widget after a delete",
        )
    assert value(after, "engine_resources", state="Provisioning") == 0
