from __future__ import annotations

from datetime import timedelta

import pytest

from engine.clock import FakeClock, SystemClock


def test_fake_clock_moves_only_when_advanced() -> None:
    clock = FakeClock()
    start = clock.now()
    clock.advance(2.5)
    assert clock.now() - start == timedelta(seconds=2.5)
    assert clock.monotonic() == 2.5


def test_fake_clock_refuses_to_go_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        FakeClock().advance(-1)


def test_system_clock_is_timezone_aware() -> None:
    assert SystemClock().now().tzinfo is not None
