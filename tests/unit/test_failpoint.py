"""Failpoints: parsing, arming per context, and each action (kill in a subprocess)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from types import MappingProxyType

import pytest

from engine.failpoint import (
    Action,
    FailpointError,
    FailpointTriggered,
    afailpoint,
    arm,
    armed,
    failpoint,
    parse_action,
    parse_failpoints,
)


@pytest.mark.parametrize(
    ("text", "action"),
    [
        pytest.param("kill", Action("kill"), id="kill"),
        pytest.param(" raise ", Action("raise"), id="raise-with-spaces"),
        pytest.param("hang", Action("hang"), id="hang"),
        pytest.param("sleep(0.5)", Action("sleep", 0.5), id="sleep"),
        pytest.param("sleep(0)", Action("sleep", 0.0), id="sleep-zero"),
    ],
)
def test_actions_are_parsed(text: str, action: Action) -> None:
    assert parse_action(text) == action


@pytest.mark.parametrize(
    ("text", "named"),
    [
        pytest.param("explode", "unknown", id="unknown"),
        pytest.param("sleep(x)", "sleep needs seconds", id="sleep-not-a-number"),
        pytest.param("sleep(-1)", "sleep needs seconds", id="sleep-negative"),
        pytest.param("sleep(inf)", "sleep needs seconds", id="sleep-infinite"),
        pytest.param("sleep", "unknown", id="sleep-without-seconds"),
    ],
)
def test_bad_actions_are_refused_with_one_clear_line(text: str, named: str) -> None:
    with pytest.raises(FailpointError, match=named) as raised:
        parse_action(text)
    assert "\n" not in str(raised.value)
    assert repr(text.strip()) in str(raised.value)


def test_a_specification_becomes_a_read_only_table() -> None:
    table = parse_failpoints("effect.after_send=kill; journal.before_commit=sleep(0.5);;")
    assert dict(table) == {
        "effect.after_send": Action("kill"),
        "journal.before_commit": Action("sleep", 0.5),
    }
    assert isinstance(table, MappingProxyType)
    with pytest.raises(TypeError):
        table["x"] = Action("kill")  # type: ignore[index]


@pytest.mark.parametrize("spec", ["effect.after_send", "=kill", "a=kill;b"])
def test_an_entry_without_name_and_action_is_refused(spec: str) -> None:
    with pytest.raises(FailpointError, match="expected NAME=ACTION"):
        parse_failpoints(spec)


def test_an_unarmed_failpoint_does_nothing() -> None:
    failpoint("test.nowhere")
    assert "test.nowhere" not in armed()


def test_arm_raises_only_inside_the_block() -> None:
    with arm(**{"test.point": "raise"}):
        assert armed()["test.point"] == Action("raise")
        with pytest.raises(FailpointTriggered, match=r"test\.point"):
            failpoint("test.point")
        failpoint("test.other")
    failpoint("test.point")


def test_sleep_blocks_the_caller_for_the_given_time() -> None:
    with arm(**{"test.slow": "sleep(0.05)"}):
        start = time.monotonic()
        failpoint("test.slow")
    assert time.monotonic() - start >= 0.05


async def test_the_async_form_suspends_only_the_task() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    other = asyncio.create_task(ticker())
    with arm(**{"test.async": "sleep(0.1)"}):
        await afailpoint("test.async")
    other.cancel()
    await asyncio.gather(other, return_exceptions=True)
    assert ticks >= 3, "the loop kept running while the failpoint slept"


async def test_an_armed_hang_never_returns() -> None:
    with arm(**{"test.hang": "hang"}):
        task = asyncio.create_task(afailpoint("test.hang"))
        done, _ = await asyncio.wait({task}, timeout=0.1)
    assert not done
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_arming_is_inherited_by_tasks_started_inside_the_block() -> None:
    async def probe() -> None:
        failpoint("test.inherited")

    with arm(**{"test.inherited": "raise"}):
        task = asyncio.create_task(probe())
    with pytest.raises(FailpointTriggered):
        await task


def _run_with(spec: str, code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENGINE_FAILPOINTS": spec}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_environment_arms_a_kill_that_ends_the_process_with_sigkill() -> None:
    code = (
        "from engine.failpoint import failpoint\n"
        "print('before', flush=True)\n"
        "failpoint('effect.after_send')\n"
        "print('after', flush=True)\n"
    )
    done = _run_with("effect.after_send=kill", code)
    assert done.returncode == -signal.SIGKILL
    assert done.stdout == "before\n"


def test_a_bad_environment_specification_names_the_variable() -> None:
    done = _run_with("effect.after_send=boom", "import engine.failpoint")
    assert done.returncode != 0
    assert "ENGINE_FAILPOINTS" in done.stderr
    assert "'boom'" in done.stderr
