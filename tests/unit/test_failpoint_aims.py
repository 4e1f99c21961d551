"""Failpoints aimed at one hit among many: `NAME:SUBJECT` acts only on hits that name
the subject, `ACTION@N` only from the N-th matching hit on."""

from __future__ import annotations

import contextvars
import threading

import pytest

from engine.failpoint import (
    Action,
    FailpointError,
    FailpointTriggered,
    arm,
    failpoint,
    parse_action,
    parse_failpoints,
    point_name,
)
from engine.testing import arm_failpoints, failpoint_env


def _fired(name: str, subjects: tuple[str, ...] = ()) -> bool:
    try:
        failpoint(name, subjects)
    except FailpointTriggered:
        return True
    return False


def test_a_hit_number_and_a_subject_are_parsed() -> None:
    table = parse_failpoints("journal.after_commit:EffectSucceeded=kill@2; a.b=sleep(0.5)@3")
    assert dict(table) == {
        "journal.after_commit:EffectSucceeded": Action("kill", from_hit=2),
        "a.b": Action("sleep", 0.5, from_hit=3),
    }
    assert point_name("journal.after_commit:EffectSucceeded") == "journal.after_commit"


@pytest.mark.parametrize("text", ["kill@0", "kill@", "kill@two", "raise@-1"])
def test_a_bad_hit_number_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(FailpointError, match="@ needs a hit number >= 1") as raised:
        parse_action(text)
    assert "\n" not in str(raised.value)


def test_an_empty_subject_is_refused() -> None:
    with pytest.raises(FailpointError, match="NAME:SUBJECT=ACTION"):
        parse_failpoints("journal.before_commit:=kill")


def test_the_action_waits_for_its_hit_and_then_acts_on_every_later_one() -> None:
    with arm(**{"test.counted": "raise@3"}):
        assert [_fired("test.counted") for _ in range(5)] == [False, False, True, True, True]
    with arm(**{"test.counted": "raise@3"}):  # a new arming counts from one again
        assert not _fired("test.counted")


def test_a_subject_entry_acts_only_on_hits_that_name_it_and_counts_only_those() -> None:
    with arm(**{"test.commit:EffectSucceeded": "raise@2"}):
        assert not _fired("test.commit", ("Observed", "EffectSucceeded"))  # first match
        assert not _fired("test.commit", ("Observed", "TransitionTaken"))  # not counted
        assert not _fired("test.commit")
        assert _fired("test.commit", ("EffectSucceeded",))  # the second match
        assert not _fired("test.other", ("EffectSucceeded",))


def test_subjects_are_read_only_when_something_is_armed() -> None:
    read = []

    def subjects() -> object:
        read.append(True)
        yield "Observed"

    failpoint("test.lazy", subjects())  # type: ignore[arg-type]
    assert read == []


def test_hits_from_several_threads_are_each_counted_once() -> None:
    fired = []
    with arm(**{"test.threads": "raise@100"}):

        def hit() -> None:
            for _ in range(50):
                fired.append(_fired("test.threads"))

        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(hit,)) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert fired.count(True) == 101  # hits 100 to 200


def test_the_kit_checks_the_point_of_an_aimed_entry() -> None:
    env = failpoint_env(**{"journal.before_commit:EffectStarted": "kill@2"})
    assert env == {"ENGINE_FAILPOINTS": "journal.before_commit:EffectStarted=kill@2"}
    with pytest.raises(FailpointError, match=r"unknown failpoint 'journal\.sent:EffectStarted'"):
        failpoint_env(**{"journal.sent:EffectStarted": "kill"})
    with arm_failpoints(**{"snapshot.before_commit": "raise@2"}):
        assert [_fired("snapshot.before_commit") for _ in range(2)] == [False, True]
