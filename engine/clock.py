"""Injectable time: the engine asks a Clock, never the OS, so tests and replay control time.

The host's wall clock may step, forwards or back (NTP, an operator, a VM resumed). The
engine's `SystemClock` therefore reads it once and then moves its wall time only with the
monotonic clock (`SteadyClock`): within one process, every timestamp it stamps (journal
records, stuck deadlines, retry times, conditions) and every deadline it computes from
them stay consistent whatever the host clock does; a new process reads the wall clock
afresh. `FakeClock` models the host for tests: `advance` moves both clocks, `step_wall`
moves the wall clock alone, either way; `RatedClock` runs a source's clocks at a rate
(a host whose clock runs fast or slow).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of wall time (UTC, for records) and monotonic time (for deadlines)."""

    def now(self) -> datetime:
        """The current UTC time, timezone-aware."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards."""
        ...


class HostClock:
    """The host's clocks as they are: its wall clock may step while the process runs."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class SteadyClock:
    """Wall time read from `source` once, at creation, then moved only by its monotonic
    clock: a step of the source's wall clock does not move it."""

    def __init__(self, source: Clock) -> None:
        self._source = source
        self._wall = source.now()
        self._origin = source.monotonic()

    def now(self) -> datetime:
        return self._wall + timedelta(seconds=self._source.monotonic() - self._origin)

    def monotonic(self) -> float:
        return self._source.monotonic()


@functools.cache
def _process_clock() -> SteadyClock:
    return SteadyClock(HostClock())


class SystemClock:
    """The real clock, steady against steps of the host's wall clock; every instance in a
    process shares one reading of the wall clock (the first instance's)."""

    def __init__(self) -> None:
        self._steady = _process_clock()

    def now(self) -> datetime:
        return self._steady.now()

    def monotonic(self) -> float:
        return time.monotonic()


class RatedClock:
    """`source`'s clocks run at `rate` times their pace from the moment of creation: a
    rate of 2 makes a second of the source two seconds here (a host whose clock runs
    fast, as under libfaketime). Sleeps on the event loop keep the loop's own pace.
    Errors: `ValueError` unless the rate is above 0."""

    def __init__(self, source: Clock, rate: float) -> None:
        if not rate > 0:
            raise ValueError(f"a clock's rate must be above 0, got {rate:g}")
        self._source = source
        self._rate = rate
        self._wall = source.now()
        self._origin = source.monotonic()

    @property
    def rate(self) -> float:
        return self._rate

    def now(self) -> datetime:
        return self._wall + timedelta(seconds=self._elapsed())

    def monotonic(self) -> float:
        return self._origin + self._elapsed()

    def _elapsed(self) -> float:
        return (self._source.monotonic() - self._origin) * self._rate


@dataclass
class FakeClock:
    """A clock that moves only when told to; for tests and deterministic replay."""

    start: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    elapsed: float = 0.0
    wall_offset: float = 0.0
    """Seconds the wall clock was stepped by (`step_wall`), on top of `elapsed`."""

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed + self.wall_offset)

    def monotonic(self) -> float:
        return self.elapsed

    def advance(self, seconds: float) -> None:
        """Move time forward (both clocks); negative steps are refused."""
        if seconds < 0:
            raise ValueError("a FakeClock never goes backwards; step_wall moves the wall clock")
        self.elapsed += seconds

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock alone by `seconds`, forwards or (negative) back, as a host's
        clock may be stepped; the monotonic clock does not move."""
        self.wall_offset += seconds
