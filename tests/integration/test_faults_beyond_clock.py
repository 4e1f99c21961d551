"""The host's wall clock stepping under a running engine, an hour forwards and then two
hours back, while a Widget's step fails and is retried with backoff. The engine's clock
is the production one (`SteadyClock`, which the system clock is) over a host whose wall
clock steps; the engine, the embedded API server and SQLite are the real ones. What must
hold: retries keep their backoff (the Widget is Ready within seconds, not an hour), the
journal's timestamps go forwards only and follow the steady clock, and no stuck
deadline fires."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.clock import SteadyClock
from engine.fsm import events as ev
from tests.integration.reconcile_support import (
    ExternalService,
    eventually,
    fast_settings,
    running_engine,
)

HOUR = 3600.0


class SteppingHost:
    """The host's clocks, with a wall clock that an operator or NTP steps (`step`)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def monotonic(self) -> float:
        return time.monotonic()

    def step(self, seconds: float) -> None:
        self.offset += seconds


async def test_retries_journal_times_and_deadlines_hold_when_the_wall_clock_steps(
    tmp_path: Path,
) -> None:
    host = SteppingHost()
    clock = SteadyClock(host)
    service = ExternalService(failures_left=3)
    settings = fast_settings(
        tmp_path, backoff_base_seconds=0.05, stuck_deadlines={"Provisioning": 20.0}
    )
    async with running_engine(tmp_path, service=service, settings=settings, clock=clock) as engine:
        began = clock.now()
        await engine.api.create_widget("stepped", size=1)

        async def failed_once() -> bool:
            return sum(engine.service.calls.values()) >= 1

        await eventually(failed_once, "the first call failed")
        host.step(HOUR)
        await eventually(lambda: _calls(engine.service, 2), "the second call")
        host.step(-2 * HOUR)

        async def ready() -> bool:
            return await engine.phase("stepped") == "Ready"

        await eventually(ready, "Ready within seconds of the steps", within=10)
        records = [record async for record in engine.journal.read_all()]
        ended = clock.now()  # after the read: the engine may append while it runs
    times = [record.at for record in records]
    assert times == sorted(times), "a journal timestamp went back"
    assert began - timedelta(seconds=1) <= times[0]
    assert times[-1] <= ended
    assert ended - began < timedelta(seconds=30)
    retries = [r for r in records if r.type == ev.RETRY_SCHEDULED]
    assert len([r for r in retries if r.data["key"].endswith(":register")]) == 3
    assert all(r.data["delay"] < 2.0 for r in retries)
    assert ev.STUCK_DETECTED not in [record.type for record in records]


async def _calls(service: ExternalService, count: int) -> bool:
    return sum(service.calls.values()) >= count
