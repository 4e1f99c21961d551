"""The waits-for graph between resources, and the policy for a cycle (a deadlock).

An edge `a → b` means "resource a waits for resource b" (a handler waits until b is
Ready, or a foreground deletion waits for a blocking dependent). The graph reports a
cycle the moment the edge that closes it is added. Synchronous and free of I/O: the
reconciler journals `DeadlockDetected` and writes the conditions.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime


class WaitsForGraph:
    """A directed graph of waits between resource keys (any strings).

    Invariants: an edge is stored once; a key with no edges in or out is not kept. Not
    thread-safe: use it from one event loop.
    """

    def __init__(self) -> None:
        self._targets: dict[str, set[str]] = {}
        self._waiters: dict[str, set[str]] = {}

    def add_edge(self, waiter: str, target: str) -> tuple[str, ...] | None:
        """Record that `waiter` waits for `target`; return the cycle this edge closes.

        The cycle is in wait order and starts at `waiter`: `(waiter, target, ..., last)`
        where `last` waits for `waiter`; a resource waiting for itself gives `(waiter,)`.
        The cycle is a shortest one through the new edge, found breadth-first in sorted
        key order, so the same graph always gives the same answer. The edge is kept even
        when it closes a cycle (the wait is real). Adding an edge already present changes
        nothing and returns None, so each cycle is reported once, when it forms.
        """
        if target in self._targets.get(waiter, ()):
            return None
        self._targets.setdefault(waiter, set()).add(target)
        self._waiters.setdefault(target, set()).add(waiter)
        path = self._path(target, waiter)
        return None if path is None else (waiter, *path[:-1])

    def remove_edge(self, waiter: str, target: str) -> None:
        """Forget that `waiter` waits for `target` (nothing happens if it did not)."""
        self._discard(self._targets, waiter, target)
        self._discard(self._waiters, target, waiter)

    def remove_key(self, key: str) -> None:
        """Forget every edge into and out of `key` (it became Ready, or was deleted)."""
        for target in tuple(self._targets.get(key, ())):
            self.remove_edge(key, target)
        for waiter in tuple(self._waiters.get(key, ())):
            self.remove_edge(waiter, key)

    def edges_of(self, waiter: str) -> frozenset[str]:
        """The keys `waiter` waits for."""
        return frozenset(self._targets.get(waiter, ()))

    def waiters_of(self, target: str) -> frozenset[str]:
        """The keys that wait for `target`."""
        return frozenset(self._waiters.get(target, ()))

    def edges(self) -> frozenset[tuple[str, str]]:
        """Every edge as `(waiter, target)`."""
        return frozenset((w, t) for w, targets in self._targets.items() for t in targets)

    def _path(self, start: str, goal: str) -> tuple[str, ...] | None:
        """A shortest path `start, ..., goal` along edges, or None."""
        previous: dict[str, str | None] = {start: None}
        frontier = deque([start])
        while frontier:
            node = frontier.popleft()
            if node == goal:
                path = [node]
                while (step := previous[path[-1]]) is not None:
                    path.append(step)
                return tuple(reversed(path))
            for nxt in sorted(self._targets.get(node, ())):
                if nxt not in previous:
                    previous[nxt] = node
                    frontier.append(nxt)
        return None

    @staticmethod
    def _discard(index: dict[str, set[str]], key: str, value: str) -> None:
        values = index.get(key)
        if values is None:
            return
        values.discard(value)
        if not values:
            del index[key]


class DeadlockPolicy(enum.Enum):
    """What to do about a cycle: report it and hold (default), or fail its newest member."""

    REPORT_AND_HOLD = "report-and-hold"
    FAIL_NEWEST = "fail-newest"


@dataclass(frozen=True, slots=True)
class DeadlockResolution:
    """The answer for one cycle: `fail` names the member to move to Failed (None: hold),
    `reason` is the message for that member's Failed condition."""

    cycle: tuple[str, ...]
    fail: str | None
    reason: str


def others_in_cycle(cycle: Sequence[str], member: str) -> tuple[str, ...]:
    """The other members of `cycle` in wait order, starting with the one `member` waits
    for (for `member`'s Deadlocked condition). Errors: `ValueError` if not a member."""
    at = list(cycle).index(member)
    return tuple(cycle[at + 1 :]) + tuple(cycle[:at])


def deadlock_message(cycle: Sequence[str], member: str) -> str:
    """The Deadlocked condition message for `member`, naming the others in wait order."""
    others = others_in_cycle(cycle, member)
    if not others:
        return f"{member} waits for itself"
    return f"{member} waits in a cycle: {' → '.join((member, *others, member))}"


def resolve_deadlock(
    cycle: Sequence[str],
    *,
    created: Mapping[str, datetime],
    policy: DeadlockPolicy = DeadlockPolicy.REPORT_AND_HOLD,
) -> DeadlockResolution:
    """Which member of `cycle` to fail under `policy`.

    With `FAIL_NEWEST` the member with the latest creation time fails (ties: the greatest
    key, so the choice is deterministic); a member missing from `created` counts as
    newest of all, since nothing is known of its age. With `REPORT_AND_HOLD` none fails.
    Errors: `ValueError` for an empty cycle.
    """
    if not cycle:
        raise ValueError("a deadlock cycle has at least one member")
    members = tuple(cycle)
    if policy is DeadlockPolicy.REPORT_AND_HOLD:
        return DeadlockResolution(members, None, "deadlock reported; holding")
    unknown = sorted(m for m in members if m not in created)
    newest = unknown[-1] if unknown else max(members, key=lambda m: (created[m], m))
    others = others_in_cycle(members, newest)
    reason = (
        f"Deadlocked: failed to break a wait cycle with {', '.join(others)}"
        if others
        else "Deadlocked: the resource waits for itself"
    )
    return DeadlockResolution(members, newest, reason)
