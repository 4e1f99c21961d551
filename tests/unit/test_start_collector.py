"""`engine run` pauses the garbage collector for its start and freezes what it built."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from engine.cli.start_collector import StartCollector


@pytest.fixture
def collector_state() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
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
    gc.disable()
    collector = StartCollector()
    collector.pause()
    collector.resume()
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0
