"""A stream whose history passes `history_warn_records` gets one Warning Event on its
resource and counts in /metrics (a resource waiting for one that never comes, polled
again and again: identical polls are collapsed, yet each doubling of their count adds a
few records); the journal it writes still replays exactly."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from engine.runtime.reconcile.history_warning import REASON
from engine.runtime.reconcile.memory_loop import MemoryLoop
from engine.telemetry.metrics import EngineMetrics
from tests.support.gadget_operator import gadget_operator, replay


async def test_a_waiting_loop_past_the_threshold_warns_once_and_still_replays() -> None:
    metrics = EngineMetrics(CollectorRegistry())
    loop = MemoryLoop(gadget_operator(), history_warn_records=20, metrics=metrics)
    key = await loop.create("waiter", {"size": "1Gi", "dependsOn": ["never"]})
    for _ in range(12):  # each poll of the wait journals a few records
        await loop.reconcile(key)
        await loop.echo(key)
        loop.clock.advance(5.0)

    records = len(await loop.records(key))
    assert records > 25
    warnings = [e for e in loop.cluster.events if e.reason == REASON]
    assert len(warnings) == 1
    assert warnings[0].warning
    assert "20" in warnings[0].message
    text = metrics.render().decode()
    assert 'engine_stream_history_warnings_total{kind="Gadget"} 1.0' in text
    longest = next(
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("engine_stream_history_records_max ")
    )
    assert 20 <= longest < 30  # the length when the append that passed 20 committed

    report = await replay(loop)
    assert report.divergence is None, report.divergence


async def test_no_warning_below_the_threshold_or_when_it_is_off() -> None:
    for limit in (0, 10_000):
        loop = MemoryLoop(gadget_operator(), history_warn_records=limit)
        key = await loop.create("small", {"size": "1Gi"})
        await loop.settle(key)
        assert not [e for e in loop.cluster.events if e.reason == REASON]
