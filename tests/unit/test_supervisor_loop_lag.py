"""The loop-lag monitor against a loop really blocked by `time.sleep`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from engine.supervisor.loop_lag import LoopLagConfig, LoopLagMonitor

FAST = LoopLagConfig(interval=0.02, warn_after=0.05, unhealthy_after=0.25, hold_unhealthy=0.3)


def block_loop(seconds: float) -> None:
    """A synchronous call that holds the event loop, as a blocking library call would."""
    time.sleep(seconds)


@asynccontextmanager
async def monitoring(monitor: LoopLagMonitor) -> AsyncIterator[None]:
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.05)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_short_block_is_reported_to_the_hook_but_stays_healthy() -> None:
    lags: list[float] = []
    monitor = LoopLagMonitor(FAST, on_lag=lags.append)
    async with monitoring(monitor):
        block_loop(0.1)  # blocks the loop
        await asyncio.sleep(0.05)
        assert monitor.healthy()
    assert any(lag >= 0.07 for lag in lags)
    assert monitor.max_lag == max(lags)


async def test_an_unblocked_loop_reports_nothing() -> None:
    lags: list[float] = []
    # a threshold no scheduling hiccup of a busy test machine reaches
    monitor = LoopLagMonitor(replace(FAST, warn_after=0.5), on_lag=lags.append)
    async with monitoring(monitor):
        await asyncio.sleep(0.1)
        assert monitor.healthy()
    assert lags == []


async def test_a_long_block_fails_liveness_at_once_and_for_the_hold_time() -> None:
    monitor = LoopLagMonitor(FAST)
    async with monitoring(monitor):
        block_loop(0.4)
        assert not monitor.healthy(), "seen as stalled before the heartbeat runs again"
        await asyncio.sleep(0.05)
        assert monitor.max_lag >= 0.35
        assert not monitor.healthy(), "still failing within the hold time"
        await asyncio.sleep(FAST.hold_unhealthy)
        assert monitor.healthy()


async def test_a_stopped_heartbeat_fails_liveness() -> None:
    monitor = LoopLagMonitor(FAST)
    async with monitoring(monitor):
        pass
    await asyncio.sleep(FAST.unhealthy_after + FAST.interval + 0.05)
    assert not monitor.healthy()


async def test_a_failing_hook_does_not_stop_the_heartbeat() -> None:
    def broken(_: float) -> None:
        raise RuntimeError("metric backend down")

    monitor = LoopLagMonitor(FAST, on_lag=broken)
    async with monitoring(monitor):
        block_loop(0.1)
        await asyncio.sleep(0.05)
        block_loop(0.1)
        await asyncio.sleep(0.05)
        assert monitor.max_lag >= 0.07
        assert monitor.healthy()


async def test_a_lag_is_traced_as_a_span_covering_the_stall() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monitor = LoopLagMonitor(FAST, tracer=provider.get_tracer("test"))
    async with monitoring(monitor):
        block_loop(0.1)
        await asyncio.sleep(0.05)
    provider.shutdown()
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "event_loop.lag"]
    assert span.attributes is not None
    lag = span.attributes["engine.loop.lag_seconds"]
    assert isinstance(lag, float)
    assert lag >= 0.07
    assert span.end_time is not None
    assert span.start_time is not None
    assert (span.end_time - span.start_time) / 1e9 == pytest.approx(lag, abs=0.01)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"interval": 0}, id="zero-interval"),
        pytest.param({"unhealthy_after": -1}, id="negative-limit"),
        pytest.param({"hold_unhealthy": -1}, id="negative-hold"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        LoopLagConfig(**options)
