"""Property: whatever happens to a few resources — creates, spec updates, deletes, step
outcomes (success, retryable and permanent failures, a hang cut off by a kill -9),
restarts with relists — the journal the live loop writes replays through the live loop
with no divergence, record for record."""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.replay.recording import is_external
from engine.runtime.reconcile.memory_loop import MemoryLoop
from engine.watchers import ChangeType
from tests.support.gadget_operator import (
    CONFIG_MAPS,
    OK,
    PERMANENT,
    REGISTER,
    RETRY,
    UNREGISTER,
    Target,
    child_change,
    gadget_operator,
    journal_of,
    replay,
)

NAMES = ("r0", "r1", "r2")

Op = tuple[str, int, int]
"""(what, which resource, a number: a size, a step outcome's index, seconds)."""

OUTCOMES = (OK, RETRY, PERMANENT)
# A hang is modelled as a kill -9 mid-step (the `hang` operation), not a real timeout: the
# effect timeout bounds the whole handler, so on a loaded machine a few-ms timeout would
# end handlers at random points between their steps.
WHAT = ["create", "update", "delete", "outcome", "hang", "restart", "settle", "advance"]


def _operations(what: list[str]) -> st.SearchStrategy[list[Op]]:
    return st.lists(
        st.tuples(st.sampled_from(what), st.integers(0, len(NAMES) - 1), st.integers(0, 5)),
        min_size=1,
        max_size=12,
    )


operations = _operations(WHAT)


class _Run:
    """The loop under test and what the operations did to it."""

    def __init__(self) -> None:
        self.target = Target()
        self.loop = MemoryLoop(gadget_operator(self.target), dependency_poll_seconds=5.0)
        self.keys: dict[str, str] = {}

    def live(self, name: str) -> bool:
        return self.loop.cluster.get(self.loop.kind, "default", name) is not None

    async def apply(self, op: Op) -> None:
        what, which, number = op
        name = NAMES[which]
        key = self.keys.get(name)
        loop = self.loop
        match what:
            case "create" if not self.live(name):
                spec: dict[str, object] = {"size": number}
                if number == 5:  # waits for the next resource (a cycle, with all three)
                    spec["dependsOn"] = [NAMES[(which + 1) % len(NAMES)]]
                self.keys[name] = await loop.create(name, spec)
            case "update" if key is not None and self.live(name):
                obj = loop.cluster.get(loop.kind, "default", name) or {}
                if not obj["metadata"].get("deletionTimestamp"):
                    await loop.update_spec(key, {"size": number + 10})
            case "delete" if key is not None and self.live(name):
                await loop.delete(key)
            case "outcome":
                step = REGISTER if which < 2 else UNREGISTER
                self.target.plan.setdefault(step, []).append(OUTCOMES[number % len(OUTCOMES)])
            case "hang" if key is not None:
                await self._hang(key, REGISTER if number < 3 else UNREGISTER)
            case "restart":
                await self._restart()
            case "drift" if key is not None:
                child = loop.cluster.get(CONFIG_MAPS.kind_ref, "default", f"{name}-config")
                if child is not None:
                    loop.cluster.remove(CONFIG_MAPS.kind_ref, child)
                    await child_change(loop, ChangeType.DELETED, child)
            case "settle" if key is not None:
                await loop.settle(key)
            case "advance":
                loop.clock.advance(float(number * 30))
            case _:
                pass

    async def _hang(self, key: str, step: str) -> None:
        """A turn whose `step` never answers: the process is killed there (if the turn
        reaches the step at all) and a new one starts."""
        self.target.hold, self.target.hold_step = asyncio.Event(), step
        self.target.entered.clear()
        turn = asyncio.get_running_loop().create_task(self.loop.reconcile(key))
        entered = asyncio.get_running_loop().create_task(self.target.entered.wait())
        await asyncio.wait({turn, entered}, return_when=asyncio.FIRST_COMPLETED)
        self.target.hold = None
        if not turn.done():
            turn.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await turn
            entered.cancel()
            await self._restart()
            return
        entered.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await entered

    async def _restart(self) -> None:
        self.loop = self.loop.restart(gadget_operator(self.target))
        await self.loop.relist()

    async def finish(self) -> None:
        """Let every resource settle (as the queue would)."""
        for _ in range(2):
            for key in list(self.keys.values()):
                with contextlib.suppress(KeyError):
                    await self.loop.settle(key)


async def _scenario(ops: list[Op]) -> None:
    run = _Run()
    for op in ops:
        await run.apply(op)
    await run.finish()
    report = await replay(run.loop)
    assert report.divergence is None, (ops, report.divergence)
    records = await journal_of(run.loop)
    assert report.compared == len([r for r in records if not is_external(r)]), ops


# a resource waiting for a dependency that never comes fails the same way 50 times, then
# its spec changes: the change ends the collapsed run, which journals its newest repeat
# first; replay counted the repeat before it as held too and ran on to attempt 65
@example(ops=[("create", 0, 5), ("settle", 0, 0), ("update", 0, 0)])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_any_sequence_of_operations_replays_without_divergence(ops: list[Op]) -> None:
    asyncio.run(_scenario(ops))


@example(ops=[("create", 0, 0), ("hang", 0, 0), ("drift", 0, 0)])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_operations([*WHAT, "drift"]))
def test_any_sequence_with_child_drift_replays_without_divergence(ops: list[Op]) -> None:
    asyncio.run(_scenario(ops))
