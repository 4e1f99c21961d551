"""Failpoints: named spots in the code where a crash test can kill, stall or fail the engine.

`failpoint("effect.after_send")` does nothing unless the spot is armed, either in the
environment (`ENGINE_FAILPOINTS=effect.after_send=kill;journal.before_commit=sleep(0.5)`,
read once at import into a read-only table) or, in tests, with `with arm(...)`.

An entry can be aimed at one hit among many: `NAME:SUBJECT=ACTION` acts only at a hit
whose subjects (what the spot passes, e.g. the record types of a journal commit)
include SUBJECT, and `ACTION@N` lets the first N - 1 matching hits of the process pass
and acts from the N-th on: `journal.after_commit:EffectSucceeded=kill@2` kills right
after the commit of the second batch that holds an `EffectSucceeded`.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import os
import signal
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
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


class _Hits:
    """How many times an armed entry matched in this process (any thread)."""

    __slots__ = ("_counter",)

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def next(self) -> int:
        return next(self._counter)  # one C call: atomic under the GIL


@dataclass(frozen=True, slots=True)
class Action:
    """What an armed failpoint does: `kind` is one of `ACTIONS`; `seconds` is for `sleep`;
    `from_hit` is the first matching hit that acts (the earlier ones pass)."""

    kind: str
    seconds: float = 0.0
    from_hit: int = 1
    hits: _Hits = field(default_factory=_Hits, compare=False, repr=False)

    def acts_now(self) -> bool:
        """Count this hit; whether it is one that acts."""
        return self.from_hit == 1 or self.hits.next() >= self.from_hit


def parse_action(text: str) -> Action:
    """The action `text` names: `kill`, `raise`, `hang` or `sleep(SECONDS)`, each
    optionally followed by `@N` (act from the N-th matching hit on, N >= 1).

    Errors: `FailpointError`.
    """
    text = text.strip()
    what, at, hit = text.partition("@")
    from_hit = 1
    if at:
        from_hit = int(hit) if hit.strip().isdigit() else 0
        if from_hit < 1:
            raise FailpointError(
                f"failpoint action {text!r}: @ needs a hit number >= 1, e.g. kill@2"
            )
    what = what.strip()
    if what in (KILL, RAISE, HANG):
        return Action(what, from_hit=from_hit)
    if what.startswith(f"{SLEEP}(") and what.endswith(")"):
        try:
            seconds = float(what[len(SLEEP) + 1 : -1])
        except ValueError:
            seconds = -1.0
        if seconds >= 0 and seconds != float("inf"):
            return Action(SLEEP, seconds, from_hit)
        raise FailpointError(
            f"failpoint action {text!r}: sleep needs seconds >= 0, e.g. sleep(0.5)"
        )
    raise FailpointError(
        f"failpoint action {text!r} is unknown: use kill, raise, hang or sleep(SECONDS), "
        "optionally with @N (from the N-th hit on)"
    )


def point_name(entry: str) -> str:
    """The failpoint an entry's name arms: `journal.before_commit:EffectStarted` arms
    `journal.before_commit` (for hits with that subject only)."""
    return entry.partition(":")[0].strip()


def parse_failpoints(spec: str) -> Mapping[str, Action]:
    """The read-only table `spec` describes: `NAME=ACTION` pairs separated by `;`, where
    NAME may be `POINT:SUBJECT` (see the module's docstring).

    Blank entries are skipped; a name given twice keeps the last action.
    Errors: `FailpointError` naming the entry and what is expected.
    """
    table: dict[str, Action] = {}
    for entry in spec.split(";"):
        if not entry.strip():
            continue
        name, sep, action = entry.partition("=")
        point, colon, subject = name.partition(":")
        if not sep or not point.strip() or (colon and not subject.strip()):
            raise FailpointError(
                f"failpoint entry {entry.strip()!r}: expected NAME=ACTION or "
                "NAME:SUBJECT=ACTION, e.g. effect.after_send=kill"
            )
        key = f"{point.strip()}:{subject.strip()}" if colon else point.strip()
        table[key] = parse_action(action)
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


def _acting(name: str, subjects: Iterable[str]) -> Action | None:
    """The action to take at this hit of `name` with `subjects`, if any (the hit counted
    by the entry it matches: the plain name first, then `name:subject`)."""
    overlay = _armed_in_context.get()
    if not _ARMED_BY_ENVIRONMENT and not overlay:
        return None
    aims = None
    for table in (_ARMED_BY_ENVIRONMENT, overlay):
        action = table.get(name)
        if action is None:
            if aims is None:
                aims = [f"{name}:{subject}" for subject in dict.fromkeys(subjects)]
            action = next((table[aim] for aim in aims if aim in table), None)
        if action is not None:
            return action if action.acts_now() else None
    return None


def failpoint(name: str, subjects: Iterable[str] = ()) -> None:
    """Act as armed for `name`: nothing when unarmed (a context-variable read and two
    truth tests). `subjects` are what this hit is about (e.g. the record types of a
    batch): an entry `name:SUBJECT` acts only on hits that name SUBJECT.

    `kill` sends SIGKILL to this process; `sleep(x)` blocks the thread x seconds (as a
    stalled disk or a GC pause would); `raise` raises `FailpointTriggered`; `hang` blocks
    the thread forever. Use `afailpoint` in coroutines where only the task should stall.
    """
    action = _acting(name, subjects)
    if action is None:
        return
    _perform(name, action)


async def afailpoint(name: str, subjects: Iterable[str] = ()) -> None:
    """Like `failpoint`, but `sleep` and `hang` suspend the calling task, not the loop."""
    import asyncio  # here, not at the top: offline commands import this module, not asyncio

    action = _acting(name, subjects)
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
