"""Event-loop lag: a heartbeat task that measures how late the loop wakes it.

A lag above `warn_after` is logged, reported to `on_lag` (feed a metric) and traced as
a span covering the stall. `healthy()` turns False while the loop has been blocked
longer than `unhealthy_after`, and stays False for `hold_unhealthy` after such a stall,
so a liveness probe (engine/runtime/manager/health.py `Check`) sees it and the pod restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import trace

from engine.clock import Clock, SystemClock

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoopLagConfig:
    """Heartbeat `interval`; `warn_after`: lag worth a log line, a metric and a span;
    `unhealthy_after`: a stall that fails liveness; `hold_unhealthy`: how long liveness
    stays failed after such a stall ended (long enough for the probe to see it). Seconds."""

    interval: float = 0.5
    warn_after: float = 0.1
    unhealthy_after: float = 10.0
    hold_unhealthy: float = 60.0

    def __post_init__(self) -> None:
        if min(self.interval, self.warn_after, self.unhealthy_after) <= 0:
            raise ValueError("loop lag interval and thresholds must be > 0")
        if self.hold_unhealthy < 0:
            raise ValueError("hold_unhealthy must be >= 0")


class LoopLagMonitor:
    """Measures the lag of the running event loop.

    Expected flow: `task = asyncio.create_task(monitor.run())`, register
    `Check("event-loop", monitor.healthy)` as a liveness check, cancel the task on exit.
    Spans go to `tracer` (default: the global provider's). `on_lag(seconds)` is called
    (on the loop) for every lag above `warn_after`; an exception it raises is logged and
    ignored. `healthy()` reads two floats and may be
    called from any thread. If the heartbeat task dies, its beats stop and `healthy()`
    turns False after `unhealthy_after`, as for a blocked loop.
    """

    def __init__(
        self,
        config: LoopLagConfig = LoopLagConfig(),
        *,
        on_lag: Callable[[float], None] | None = None,
        clock: Clock | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._config = config
        self._on_lag = on_lag
        self._clock = clock or SystemClock()
        self._tracer = tracer or trace.get_tracer(__name__)
        self._last_beat = self._clock.monotonic()
        self._unhealthy_until = float("-inf")
        self._last_lag = 0.0
        self._max_lag = 0.0

    @property
    def last_lag(self) -> float:
        """The lag measured at the latest heartbeat, seconds."""
        return self._last_lag

    @property
    def max_lag(self) -> float:
        """The largest lag measured so far, seconds."""
        return self._max_lag

    def healthy(self) -> bool:
        """False while the loop is stalled past `unhealthy_after`, or within
        `hold_unhealthy` after such a stall; True otherwise."""
        now = self._clock.monotonic()
        stalled = now - self._last_beat - self._config.interval
        return stalled <= self._config.unhealthy_after and now >= self._unhealthy_until

    async def run(self) -> None:
        """Beat every `interval` until cancelled."""
        interval = self._config.interval
        self._last_beat = self._clock.monotonic()
        while True:
            await asyncio.sleep(interval)
            now = self._clock.monotonic()
            lag = max(0.0, now - self._last_beat - interval)
            self._last_beat = now
            self._record(lag, now)

    def _record(self, lag: float, now: float) -> None:
        self._last_lag = lag
        self._max_lag = max(self._max_lag, lag)
        if lag <= self._config.warn_after:
            return
        if lag > self._config.unhealthy_after:
            self._unhealthy_until = now + self._config.hold_unhealthy
        logger.warning("event loop lagged %.3f s (warn after %.3f s)", lag, self._config.warn_after)
        end_ns = self._clock_ns()
        span = self._tracer.start_span(
            "event_loop.lag",
            start_time=end_ns - int(lag * 1e9),
            attributes={"engine.loop.lag_seconds": lag},
        )
        span.end(end_time=end_ns)
        if self._on_lag is not None:
            try:
                self._on_lag(lag)
            except Exception as bad:  # a broken metric must not stop the heartbeat
                logger.warning("loop lag hook failed: %s", type(bad).__name__)

    def _clock_ns(self) -> int:
        return int(self._clock.now().timestamp() * 1e9)
