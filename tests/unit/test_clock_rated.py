from __future__ import annotations

from datetime import timedelta

import pytest

from engine.clock import FakeClock, RatedClock


def test_a_rated_clock_runs_its_source_at_its_rate_from_its_creation() -> None:
    source = FakeClock()
    source.advance(10)
    fast = RatedClock(source, 2.0)
    start, origin = fast.now(), fast.monotonic()
    assert origin == 10
    source.advance(1.5)
    assert fast.monotonic() - origin == 3.0
    assert fast.now() - start == timedelta(seconds=3)
    slow = RatedClock(source, 0.5)
    source.advance(2)
    assert slow.monotonic() == source.monotonic() - 1


def test_a_rated_clock_refuses_a_rate_that_is_not_above_zero() -> None:
    with pytest.raises(ValueError, match="rate must be above 0"):
        RatedClock(FakeClock(), 0)
