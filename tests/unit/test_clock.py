from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.clock import FakeClock, SteadyClock, SystemClock
from engine.fsm.state import ResourceState
from engine.supervisor.stuck import ResourceInState, detect_stuck


def test_fake_clock_moves_only_when_advanced() -> None:
    clock = FakeClock()
    start = clock.now()
    clock.advance(2.5)
    assert clock.now() - start == timedelta(seconds=2.5)
    assert clock.monotonic() == 2.5


def test_fake_clock_refuses_to_go_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        FakeClock().advance(-1)


def test_the_fake_wall_clock_steps_back_and_forth_without_the_monotonic_clock() -> None:
    clock = FakeClock()
    start = clock.now()
    clock.step_wall(-3600)
    assert clock.now() - start == timedelta(hours=-1)
    assert clock.monotonic() == 0.0
    clock.advance(2)
    clock.step_wall(7200)
    assert clock.now() - start == timedelta(hours=1, seconds=2)
    assert clock.monotonic() == 2.0


@pytest.mark.parametrize("step", [3600.0, -3600.0], ids=["forwards", "back"])
def test_a_steady_clock_does_not_follow_a_step_of_the_host_wall_clock(step: float) -> None:
    host = FakeClock()
    steady = SteadyClock(host)
    start = steady.now()
    host.advance(1.5)
    host.step_wall(step)
    assert steady.now() - start == timedelta(seconds=1.5)
    assert steady.monotonic() == host.monotonic() == 1.5


@pytest.mark.parametrize("step", [3600.0, -3600.0], ids=["forwards", "back"])
def test_stuck_deadlines_hold_when_the_host_wall_clock_steps(step: float) -> None:
    # a resource enters Provisioning (its time stamped by the engine's clock), the host's
    # wall clock steps by an hour, and time goes on: it is stuck exactly when 300 s passed
    host = FakeClock()
    steady = SteadyClock(host)
    item = ResourceInState("ns/a", ResourceState(state="Provisioning"), entered_at=steady.now())
    deadlines = {"Provisioning": 300.0}
    host.step_wall(step)
    host.advance(299)
    assert detect_stuck([item], deadlines=deadlines, now=steady.now()) == ()
    host.advance(2)
    (report,) = detect_stuck([item], deadlines=deadlines, now=steady.now())
    assert report.seconds == 301.0
    # the host's wall clock itself would have reported it at once, or an hour late
    early_or_late = detect_stuck([item], deadlines=deadlines, now=host.now()) != ()
    assert early_or_late is (step > 0)


def test_the_system_clock_starts_at_the_host_wall_time() -> None:
    before = datetime.now(UTC)
    clock = SystemClock()
    after = datetime.now(UTC)
    assert before <= clock.now() <= after + timedelta(seconds=1)


def test_system_clock_is_timezone_aware() -> None:
    assert SystemClock().now().tzinfo is not None
