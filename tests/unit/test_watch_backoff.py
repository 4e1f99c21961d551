"""Reconnect delays and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.watchers.backoff import BackoffPolicy, retry_after_seconds

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_default_backoff_starts_at_client_go_initial_and_doubles() -> None:
    policy = BackoffPolicy()
    assert [policy.delay(attempt, 0.0) for attempt in range(4)] == [0.8, 1.6, 3.2, 6.4]


def test_backoff_reaches_the_cap_and_stays_there() -> None:
    policy = BackoffPolicy()
    assert policy.delay(5, 0.0) == 25.6
    assert policy.delay(6, 0.0) == 30.0
    assert policy.delay(1000, 0.99) == 30.0


def test_full_jitter_can_double_a_delay_below_the_cap() -> None:
    assert BackoffPolicy().delay(0, 0.5) == pytest.approx(1.2)


@given(attempt=st.integers(min_value=0, max_value=200), unit=st.floats(0.0, 0.999999))
def test_backoff_delay_stays_within_initial_and_cap(attempt: int, unit: float) -> None:
    policy = BackoffPolicy(initial=0.8, cap=30.0)
    assert 0.8 <= policy.delay(attempt, unit) <= 30.0
    assert policy.delay(attempt, unit) <= policy.delay(attempt + 1, unit)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"initial": 0.0}, id="zero-initial"),
        pytest.param({"cap": -1.0}, id="negative-cap"),
        pytest.param({"factor": 0.5}, id="shrinking-factor"),
        pytest.param({"jitter": -0.1}, id="negative-jitter"),
    ],
)
def test_backoff_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        BackoffPolicy(**kwargs)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("1", 1.0, id="seconds"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("3600", 60.0, id="large-capped"),
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("Thu, 01 Jan 2026 12:00:05 GMT", 5.0, id="http-date"),
        pytest.param("Thu, 01 Jan 2026 11:59:00 GMT", 0.0, id="http-date-in-the-past"),
    ],
)
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header, now=NOW) == expected
