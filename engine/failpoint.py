"""Failpoints: named spots in the code where a crash test can kill, stall or fail the engine.

`failpoint("effect.after_send")` does nothing unless the spot is armed, either in the
environment (`ENGINE_FAILPOINTS=effect.after_send=kill;journal.before_commit=sleep(0.5)`,
read once at import into a read-only table) or, in tests, with `with arm(...)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

ENVIRONMENT_VARIABLE: Final = "ENGINE_FAILPOINTS"
KILL: Final = "kill"
SLEEP: Final = "sleep"
RAISE: Final = "raise"
HANG: Final = "hang"
ACTIONS: Final = (KILL, SLEEP, RAISE, HANG)


class FailpointError(ValueError):
    """A failpoint specification cannot be read; the message names the part and the fix."""


class FailpointTriggered(RuntimeError):
    """Raised by a failpoint armed with the `raise` action."""

    def __init__(self, name: str) -> None:
        super().__init__(f"failpoint {name!r} raised")
        self.name = name


@dataclass(frozen=True, slots=True)
class Action:
    """What an armed failpoint does: `kind` is one of `ACTIONS`; `seconds` is for `sleep`."""

    kind: str
    seconds: float = 0.0


def parse_action(text: str) -> Action:
    """The action `text` names: `kill`, `raise`, `hang` or `sleep(SECONDS)`.

    Errors: `FailpointError`.
    """
    text = text.strip()
    if text in (KILL, RAISE, HANG):
        return Action(text)
    if text.startswith(f"{SLEEP}(") and text.endswith(")"):
        try:
            seconds = float(text[len(SLEEP) + 1 : -1])
        except ValueError:
            seconds = -1.0
        if seconds >= 0 and seconds != float("inf"):
            return Action(SLEEP, seconds)
        raise FailpointError(
            f"failpoint action {text!r}: sleep needs seconds >= 0, e.g. sleep(0.5)"
        )
    raise FailpointError(
        f"failpoint action {text!r} is unknown: use kill, raise, hang or sleep(SECONDS)"
    )


def parse_failpoints(spec: str) -> Mapping[str, Action]:
    """The read-only table `spec` describes: `NAME=ACTION` pairs separated by `;`.

    Blank entries are skipped; a name given twice keeps the last action.
    Errors: `FailpointError` naming the entry and what is expected.
    """
    table: dict[str, Action] = {}
    for entry in spec.split(";"):
        if not entry.strip():
            continue
        name, sep, action = entry.partition("=")
        if not sep or not name.strip():
            raise FailpointError(
                f"failpoint entry {entry.strip()!r}: expected NAME=ACTION, "
                "e.g. effect.after_send=kill"
            )
        table[name.strip()] = parse_action(action)
    return MappingProxyType(table)


def _from_environment() -> Mapping[str, Action]:
    try:
        return parse_failpoints(os.environ.get(ENVIRONMENT_VARIABLE, ""))
    except FailpointError as bad:
        raise FailpointError(f"{ENVIRONMENT_VARIABLE}: {bad}") from None


_ARMED_BY_ENVIRONMENT: Final = _from_environment()
# Tests arm failpoints per context (a task and what it spawns), never process-wide.
_armed_in_context: contextvars.ContextVar[Mapping[str, Action]] = contextvars.ContextVar(
    "engine_failpoints", default=MappingProxyType({})
)


def armed() -> Mapping[str, Action]:
    """The failpoints armed here: the environment's, overlaid by those of `arm()`."""
    overlay = _armed_in_context.get()
    if not overlay:
        return _ARMED_BY_ENVIRONMENT
    return MappingProxyType({**_ARMED_BY_ENVIRONMENT, **overlay})


@contextlib.contextmanager
def arm(**actions: str) -> Iterator[None]:
    """Arm failpoints for the `with` body in this context, e.g.
    `with arm(**{"effect.after_send": "raise"}):`. Errors: `FailpointError`."""
    overlay = {**_armed_in_context.get(), **{n: parse_action(a) for n, a in actions.items()}}
    token = _armed_in_context.set(MappingProxyType(overlay))
    try:
        yield
    finally:
        _armed_in_context.reset(token)


def failpoint(name: str) -> None:
    """Act as armed for `name`: nothing when unarmed (one or two dict lookups).

    `kill` sends SIGKILL to this process; `sleep(x)` blocks the thread x seconds (as a
    stalled disk or a GC pause would); `raise` raises `FailpointTriggered`; `hang` blocks
    the thread forever. Use `afailpoint` in coroutines where only the task should stall.
    """
    action = _ARMED_BY_ENVIRONMENT.get(name) or _armed_in_context.get().get(name)
    if action is None:
        return
    _perform(name, action)


async def afailpoint(name: str) -> None:
    """Like `failpoint`, but `sleep` and `hang` suspend the calling task, not the loop."""
    action = _ARMED_BY_ENVIRONMENT.get(name) or _armed_in_context.get().get(name)
    if action is None:
        return
    if action.kind == SLEEP:
        await asyncio.sleep(action.seconds)
    elif action.kind == HANG:
        await asyncio.Event().wait()
    else:
        _perform(name, action)


def _perform(name: str, action: Action) -> None:
    if action.kind == KILL:
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.kind == SLEEP:
        time.sleep(action.seconds)
    elif action.kind == RAISE:
        raise FailpointTriggered(name)
    else:  # HANG
        while True:
            time.sleep(3600)
