"""`Context.wait_until_ready` and foreground deletions in the running engine: the waits-for
graph between resources, deadlock reports (journal, Warning Event, `Deadlocked` condition
on every member of a cycle) and the deadlock policy; waiters are enqueued again when what
they wait for changes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime

from engine.effects.errors import DependencyNotReady, PermanentError
from engine.fsm import events as ev
from engine.fsm.table import READY
from engine.runtime.reconcile.conditions import DEADLOCKED, SupervisorConditions
from engine.runtime.reconcile.foreground import (
    blocking_dependents,
    blocking_owner_uids,
    deleting_in_foreground,
)
from engine.runtime.reconcile.inbox import Inbox, Note
from engine.runtime.reconcile.objects import Entry, PrimaryView
from engine.runtime.reconcile.observations import stream_of
from engine.runtime.reconcile.operator import Operator
from engine.supervisor.waits_for import (
    DeadlockPolicy,
    WaitsForGraph,
    deadlock_message,
    resolve_deadlock,
)

log = logging.getLogger(__name__)


class DependencyWaits:
    """The engine's `ReadinessWaits`. One event loop; keys are `namespace/name`.

    Expected flow: the reconciler runs each handler inside `attempt(waiter)`; a handler's
    `wait_until_ready` returns when the target's status says Ready, else adds the edge
    waiter → target and raises `DependencyNotReady`. An edge the attempt did not ask for
    again is dropped when the attempt ends (the waiter moved on or stopped waiting).
    `notify` keeps the foreground-deletion edges: an object deleted with the
    `foregroundDeletion` finalizer waits for each primary object that names it in an
    ownerReference with `blockOwnerDeletion: true`; the edge goes when that dependent is
    gone or no longer blocks, or the owner is gone.
    Guarantees: a cycle is reported once, when its closing edge is added: a
    `DeadlockDetected` record (the cycle's streams, in wait order) in every member's
    stream, a Warning Event and a `Deadlocked` condition naming the others; with
    `FAIL_NEWEST` the newest member's next wait raises `PermanentError` (→ Failed).
    """

    def __init__(
        self,
        *,
        operator: Operator,
        objects: PrimaryView,
        conditions: SupervisorConditions,
        inbox: Inbox,
        enqueue: Callable[[str], None],
        policy: DeadlockPolicy = DeadlockPolicy.REPORT_AND_HOLD,
        poll_seconds: float = 5.0,
    ) -> None:
        """`poll_seconds`: how soon a waiting provision is retried (it is also enqueued at
        once when its target changes); `enqueue`: the work queue's add; a deadlock is left
        in `inbox` as a note for each member's next turn."""
        self._operator = operator
        self._objects = objects
        self._conditions = conditions
        self._inbox = inbox
        self._enqueue = enqueue
        self._policy = policy
        self._poll_seconds = poll_seconds
        self.graph = WaitsForGraph()
        self._touched: dict[str, set[str]] = {}
        self._doomed: dict[str, str] = {}
        self._foreground: dict[str, frozenset[str]] = {}  # owner → its blocking dependents
        self._owners: dict[str, Entry] = {}  # owner → as last seen (the view may drop it)

    @contextlib.contextmanager
    def attempt(self, waiter: str) -> Iterator[None]:
        """Scope one handler run of `waiter`: edges it did not ask for again are dropped."""
        touched = self._touched[waiter] = set()
        try:
            yield
        finally:
            self._touched.pop(waiter, None)
            held = self._foreground.get(waiter, frozenset())
            for target in self.graph.edges_of(waiter) - touched - held:
                self.graph.remove_edge(waiter, target)
            if not self.graph.edges_of(waiter):
                self._conditions.clear(waiter, DEADLOCKED)

    async def wait_until_ready(self, waiter: str, target: str) -> None:
        """See `ReadinessWaits.wait_until_ready`."""
        reason = self._doomed.pop(waiter, None)
        if reason is not None:
            raise PermanentError(reason)
        self._touched.setdefault(waiter, set()).add(target)
        entry = self._objects.get(target)
        if entry is not None and entry.exists:
            status = entry.obj.get("status") or {}
            if status.get("phase") == READY:
                if target not in self._foreground.get(waiter, ()):
                    self.graph.remove_edge(waiter, target)
                return
        cycle = self.graph.add_edge(waiter, target)
        if cycle is not None:
            self._report(cycle)
            reason = self._doomed.pop(waiter, None)
            if reason is not None:
                raise PermanentError(reason)
        missing = entry is None or not entry.exists
        what = f"{target}, which does not exist yet" if missing else target
        raise DependencyNotReady(what, delay=self._poll_seconds)

    def notify(self, key: str) -> None:
        """`key` changed: enqueue it and whatever waits for it; forget a deleted key; bring
        the foreground-deletion edges of `key` and of the owners it blocks up to date (a
        cycle one of them closes is reported in a task of its own)."""
        self._enqueue(key)
        for waiter in self.graph.waiters_of(key):
            self._enqueue(waiter)
        entry = self._objects.get(key)
        if entry is None or not entry.exists:
            self.graph.remove_key(key)
        owners = {key} | {o for o, blockers in self._foreground.items() if key in blockers}
        if entry is not None and entry.exists:
            for uid in blocking_owner_uids(entry.obj):
                owner = self._objects.key_of_uid(uid)
                if owner is not None:
                    owners.add(owner)
        for owner in sorted(owners):
            self._sync_foreground(owner)

    def _sync_foreground(self, owner: str) -> None:
        """Make the edges `owner` → blocking dependent match the view (an owner the view
        dropped once the engine was done with it counts as last seen until its deletion
        is observed)."""
        entry = self._entry(owner)
        wanted: frozenset[str] = frozenset()
        if entry is not None and deleting_in_foreground(entry):
            wanted = blocking_dependents(self._objects, entry.uid) - {owner}
        held = self._foreground.get(owner, frozenset())
        if not wanted and not held:
            return
        asked = self._touched.get(owner, set())
        for gone in held - wanted - asked:
            self.graph.remove_edge(owner, gone)
        if wanted and entry is not None:
            self._foreground[owner] = wanted
            self._owners[owner] = entry
        else:
            self._foreground.pop(owner, None)
            self._owners.pop(owner, None)
        for dependent in sorted(wanted - held):
            cycle = self.graph.add_edge(owner, dependent)
            if cycle is not None:
                self._report(cycle)
        if not self.graph.edges_of(owner):
            self._conditions.clear(owner, DEADLOCKED)

    def deadlocked(self) -> int:
        """Resources holding a `Deadlocked` condition (for the gauge)."""
        return self._conditions.count(DEADLOCKED)

    def _report(self, cycle: tuple[str, ...]) -> None:
        """Leave a note for every member of `cycle` (their next turns journal
        `DeadlockDetected`, hold the `Deadlocked` condition and post a Warning Event) and
        apply the deadlock policy."""
        streams = {m: self._stream(m) for m in cycle}
        log.warning("deadlock: %s", " → ".join((*cycle, cycle[0])))
        record = ev.deadlock_detected(cycle=tuple(s or m for m, s in streams.items()))
        for member in cycle:
            stream = streams[member]
            if stream is None:
                continue
            message = deadlock_message(cycle, member)
            condition = {
                "type": DEADLOCKED,
                "status": "True",
                "reason": "WaitCycle",
                "message": message,
            }
            self._inbox.leave(
                member,
                Note(
                    stream=stream,
                    records=(record,),
                    condition=condition,
                    reason="DeadlockDetected",
                    message=message,
                    fallback=self._owners.get(member),
                ),
            )
            self._enqueue(member)
        created = {m: c for m in cycle if (c := self._created(m)) is not None}
        resolution = resolve_deadlock(cycle, created=created, policy=self._policy)
        if resolution.fail is not None:
            self._doomed[resolution.fail] = resolution.reason
            self._enqueue(resolution.fail)

    def _entry(self, key: str) -> Entry | None:
        """`key` as the view holds it, else as last seen deleting in the foreground."""
        return self._objects.get(key) or self._owners.get(key)

    def _stream(self, key: str) -> str | None:
        entry = self._entry(key)
        if entry is None or not entry.uid:
            return None
        return stream_of(self._operator, entry.obj)

    def _created(self, key: str) -> datetime | None:
        entry = self._entry(key)
        if entry is None:
            return None
        text = str(entry.obj.get("metadata", {}).get("creationTimestamp") or "")
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
