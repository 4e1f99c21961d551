"""The summary strip (pure): resources per state over time, retries, and effect latency
percentiles, aggregated over every lane."""

from __future__ import annotations

import pytest

from engine.fsm import events as ev
from engine.ui.summary import summarize, summary_svg, summary_text
from tests.unit.test_ui_picture import Streams, golden, picture_of


def test_resources_per_state_follow_the_lanes_over_time() -> None:
    streams = Streams()
    streams.add(
        "a",
        ev.transition_taken(
            source="Pending", dest="Provisioning", trigger="observed_live", generation=1
        ),
        seconds=0,
    )
    streams.add(
        "b",
        ev.transition_taken(
            source="Pending", dest="Provisioning", trigger="observed_live", generation=1
        ),
        seconds=0,
    )
    streams.add(
        "a",
        ev.transition_taken(
            source="Provisioning", dest="Ready", trigger="provisioned", generation=1
        ),
        seconds=5,
    )
    streams.add(
        "b", ev.status_written(phase="Provisioning", observed_generation=1, reason=None), seconds=10
    )
    summary = summarize(picture_of(streams.records), buckets=10)
    assert summary.per_state["Provisioning"][:5] == (2, 2, 2, 2, 2)
    assert summary.per_state["Provisioning"][5:] == (1, 1, 1, 1, 1)
    assert summary.per_state["Ready"] == (0, 0, 0, 0, 0, 1, 1, 1, 1, 1)
    assert sum(summary.per_state["Failed"]) == 0


def test_latency_percentiles_are_nearest_rank_over_finished_attempts() -> None:
    streams = Streams()
    for i, seconds in enumerate((0.1, 0.2, 0.3, 0.4, 1.0)):
        key = f"k{i}"
        streams.add("a", ev.effect_started(key=key, name="step", attempt=1), seconds=10 * i)
        streams.add(
            "a",
            ev.effect_succeeded(key=key, name="step", attempt=1, result=None),
            seconds=10 * i + seconds,
        )
    summary = summarize(picture_of(streams.records))
    assert summary.latency == pytest.approx({"p50": 0.3, "p90": 1.0, "p99": 1.0, "max": 1.0})
    assert summary.attempts == 5
    assert "p50 300 ms" in summary_text(summary)


def test_retries_are_counted_where_they_were_scheduled() -> None:
    records = golden("retry_ready")
    summary = summarize(picture_of(records))
    assert sum(summary.retries) == len([r for r in records if r.type == ev.RETRY_SCHEDULED])
    svg = summary_svg(summary)
    assert svg.count('class="retry"') == sum(1 for count in summary.retries if count)
    # the one state that lasts a while in this journal: Pending and Ready hold the first
    # and the last instant only, so they get no area
    assert svg.count('<path class="area s-') == 1
    assert 'class="area s-Provisioning' in svg
