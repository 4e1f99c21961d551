"""`engine run` pauses the garbage collector for its start and freezes what it built."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from engine.cli.start_collector import STEADY_THRESHOLD, StartCollector, paused


@pytest.fixture
def collector_state() -> Iterator[None]:
    enabled = gc.isenabled()
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.usefixtures("collector_state")
def test_paused_for_the_start_then_the_start_heap_frozen_and_the_collector_back_on() -> None:
    gc.enable()
    gc.unfreeze()
    collector = StartCollector()
    collector.pause()
    assert not gc.isenabled()
    built = [{"metadata": {"name": f"o-{n}"}} for n in range(1000)]  # the start's heap
    collector.resume()
    assert gc.isenabled()
    assert gc.get_freeze_count() > len(built)
    gc.unfreeze()
    gc.disable()
    collector.resume()  # once only: a second call leaves the collector as it is
    assert not gc.isenabled()


@pytest.mark.usefixtures("collector_state")
def test_a_collector_already_off_stays_off() -> None:
    gc.set_threshold(700, 10, 10)
    gc.disable()
    collector = StartCollector()
    collector.pause()
    collector.resume()
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[0] == 700


@pytest.mark.usefixtures("collector_state")
def test_once_running_the_young_generation_is_collected_less_often() -> None:
    gc.enable()
    gc.set_threshold(700, 10, 10)
    collector = StartCollector()
    collector.pause()
    assert gc.get_threshold() == (700, 10, 10)  # the start runs with the collector off
    collector.resume()
    assert gc.get_threshold() == (STEADY_THRESHOLD, 10, 10)
    assert STEADY_THRESHOLD > 700


@pytest.mark.usefixtures("collector_state")
def test_a_higher_threshold_already_set_is_kept() -> None:
    gc.enable()
    gc.set_threshold(STEADY_THRESHOLD * 5, 7, 3)
    collector = StartCollector()
    collector.pause()
    collector.resume()
    assert gc.get_threshold() == (STEADY_THRESHOLD * 5, 7, 3)


@pytest.mark.usefixtures("collector_state")
def test_imports_run_with_the_collector_off_and_leave_it_as_it_was() -> None:
    gc.enable()
    with paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ImportError), paused():
        raise ImportError("an operator module that does not import")
    assert gc.isenabled()  # back on after a failed import too
    gc.disable()
    with paused():
        pass
    assert not gc.isenabled()  # off before: off after
