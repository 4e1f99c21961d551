"""The watcher's state machine: one pure step per outcome."""

from __future__ import annotations

import pytest

from engine.watchers.backoff import BackoffPolicy
from engine.watchers.watch_state import (
    INITIAL,
    BackingOff,
    Failed,
    Listed,
    Listing,
    Outcome,
    RestartReason,
    Step,
    StreamClosed,
    Waited,
    Watching,
    next_step,
)
from engine.watchers.watcher import failure_for_status

POLICY = BackoffPolicy(initial=1.0, cap=8.0, factor=2.0, jitter=0.0)


def step(current: Step, outcome: Outcome) -> Step:
    return next_step(current, outcome, policy=POLICY, jitter_unit=0.0)


def test_a_watcher_starts_by_listing() -> None:
    assert Step(Listing(), failures=0) == INITIAL


def test_a_completed_list_starts_a_watch_from_the_list_resource_version() -> None:
    assert step(INITIAL, Listed("42")) == Step(Watching("42"))


def test_a_clean_end_of_watch_resumes_from_the_last_delivered_version() -> None:
    assert step(Step(Watching("42")), StreamClosed("57")) == Step(Watching("57"))


def test_expired_watch_relists_at_once_without_backoff() -> None:
    after = step(Step(Watching("42")), Failed(RestartReason.EXPIRED, "42"))
    assert after == Step(Listing())


@pytest.mark.parametrize("reason", [RestartReason.TOO_LARGE, RestartReason.RELIST])
def test_a_resume_point_too_large_for_the_server_relists_at_once(reason: RestartReason) -> None:
    after = step(Step(Watching("42"), failures=2), Failed(reason, "42"))
    assert after == Step(Listing(), failures=2)


def test_a_504_that_says_the_resource_version_is_too_large_is_not_a_server_error() -> None:
    plain = failure_for_status(504, retry_after=None, resource_version="9", progressed=False)
    too_large = failure_for_status(
        504, retry_after=None, resource_version="9", progressed=False, too_large=True
    )
    assert (plain.reason, too_large.reason) == (RestartReason.SERVER_ERROR, RestartReason.TOO_LARGE)


def test_expired_list_backs_off_before_listing_again() -> None:
    after = step(INITIAL, Failed(RestartReason.EXPIRED))
    assert after == Step(BackingOff(1.0, Listing(), RestartReason.EXPIRED), failures=1)


def test_watch_failure_backs_off_then_resumes_from_the_last_delivered_version() -> None:
    failed = step(Step(Watching("42")), Failed(RestartReason.CONNECTION_ERROR, "50"))
    assert failed == Step(
        BackingOff(1.0, Watching("50"), RestartReason.CONNECTION_ERROR), failures=1
    )
    assert step(failed, Waited()) == Step(Watching("50"), failures=1)


def test_consecutive_failures_grow_the_delay_up_to_the_cap() -> None:
    current = Step(Listing())
    delays = []
    for _ in range(6):
        current = step(current, Failed(RestartReason.SERVER_ERROR))
        assert isinstance(current.state, BackingOff)
        delays.append(current.state.delay)
        current = step(current, Waited())
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_watch_that_progressed_before_failing_resets_the_backoff() -> None:
    current = Step(Watching("1"), failures=5)
    after = step(current, Failed(RestartReason.CONNECTION_ERROR, "9", progressed=True))
    assert after == Step(BackingOff(1.0, Watching("9"), RestartReason.CONNECTION_ERROR), failures=1)


def test_a_successful_list_resets_the_failure_count() -> None:
    assert step(Step(Listing(), failures=4), Listed("3")).failures == 0


@pytest.mark.parametrize(
    ("retry_after", "expected_delay"),
    [
        pytest.param(None, 1.0, id="absent-uses-backoff"),
        pytest.param(0.0, 1.0, id="zero-uses-backoff"),
        pytest.param(5.0, 5.0, id="longer-than-backoff-wins"),
    ],
)
def test_retry_after_is_a_lower_bound_on_the_delay(
    retry_after: float | None, expected_delay: float
) -> None:
    failure = Failed(RestartReason.THROTTLED, "7", retry_after=retry_after)
    after = step(Step(Watching("7")), failure)
    assert isinstance(after.state, BackingOff)
    assert after.state.delay == expected_delay


@pytest.mark.parametrize(
    ("current", "outcome"),
    [
        pytest.param(Step(Watching("1")), Waited(), id="waited-while-watching"),
        pytest.param(Step(Listing()), StreamClosed("1"), id="stream-closed-while-listing"),
        pytest.param(
            Step(BackingOff(1.0, Listing(), RestartReason.INACTIVE)),
            Listed("1"),
            id="listed-while-backing-off",
        ),
    ],
)
def test_impossible_outcomes_are_refused(current: Step, outcome: Outcome) -> None:
    with pytest.raises(ValueError, match="cannot happen"):
        step(current, outcome)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        pytest.param(410, RestartReason.EXPIRED, id="410"),
        pytest.param(429, RestartReason.THROTTLED, id="429"),
        pytest.param(500, RestartReason.SERVER_ERROR, id="500"),
        pytest.param(503, RestartReason.SERVER_ERROR, id="503"),
        pytest.param(403, RestartReason.CLIENT_ERROR, id="403"),
    ],
)
def test_status_codes_map_to_restart_reasons(code: int, reason: RestartReason) -> None:
    failure = failure_for_status(code, retry_after=2.0, resource_version="3", progressed=False)
    assert failure == Failed(reason, "3", False, 2.0)
