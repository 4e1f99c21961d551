"""A small operator for the reconcile-loop tests over in-memory parts ("Gadget": one
ConfigMap child, `dependsOn` waits, one external step per handler) whose external steps
answer as a test scripts them, and the replay of a `MemoryLoop`'s journal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.effects import BackoffPolicy, PermanentError, RetryableError
from engine.fsm.decide import DEFAULT_POLICY, DecidePolicy
from engine.journal.record import Record
from engine.replay.replayed_run import ReplayPolicy, ReplayReport, replay_through_loop
from engine.runtime.reconcile.handler_context import Context, EffectFn
from engine.runtime.reconcile.memory_loop import MemoryLoop
from engine.runtime.reconcile.operator import ChildKind, CustomResource, Operator
from engine.watchers import Change, ChangeOrigin, ChangeType

GROUP = "loop.engine.dev"
GADGET = CustomResource(
    group=GROUP,
    version="v1",
    kind="Gadget",
    plural="gadgets",
    schema={"type": "object", "properties": {"spec": {"type": "object"}}},
)
CONFIG_MAPS = ChildKind("", "v1", "ConfigMap", "configmaps")
FINALIZER = f"{GROUP}/finalizer"
REGISTER, UNREGISTER = "register", "unregister"

OK, RETRY, PERMANENT, HANG = "ok", "retry", "permanent", "hang"


@dataclass
class Target:
    """The external service behind the steps: each call of step `name` plays the next
    outcome of `plan[name]` (`ok` once the plan is used up); a retryable failure asks for
    `retry_delay` at least; `hold`, when set, makes every call of step `hold_step` wait
    for it first (a handler caught mid-step); `probe`, when set, is called with each call's key
    before it answers (to look at the cluster at that moment)."""

    plan: dict[str, list[str]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    retry_delay: float = 0.0
    hold: asyncio.Event | None = None
    hold_step: str = REGISTER
    probe: Callable[[str], None] | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    def step(self, name: str, spec: Mapping[str, Any]) -> EffectFn:
        async def call(key: str) -> Any:
            self.calls.append(key)
            if self.probe is not None:
                self.probe(key)
            if name == self.hold_step and self.hold is not None:
                self.entered.set()
                await self.hold.wait()
            outcomes = self.plan.get(name) or []
            outcome = outcomes.pop(0) if outcomes else OK
            if outcome == RETRY:
                raise RetryableError(f"{name} is busy", delay=self.retry_delay)
            if outcome == PERMANENT:
                raise PermanentError(f"{name} refused size {spec.get('size')!r}")
            if outcome == HANG:
                await asyncio.Event().wait()  # never answers: the effect timeout ends it
            return {"step": name, "size": spec.get("size")}

        return call


def gadget_operator(target: Target | None = None, *, finalize: bool = True) -> Operator:
    """Provision: apply `<name>-config`, wait for every Gadget in `spec.dependsOn`, then
    step `register` (a spec with `busy: true` fails the handler itself retryably, after
    the child); finalize (when `finalize`): step `unregister`."""
    target = target or Target()

    async def provision(ctx: Context) -> None:
        await ctx.apply_child(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{ctx.name}-config"},
                "data": {"size": str(ctx.spec.get("size"))},
            }
        )
        if ctx.spec.get("busy"):
            raise RetryableError("the handler is busy")
        for needed in ctx.spec.get("dependsOn") or ():
            await ctx.wait_until_ready(str(needed))
        await ctx.effect(REGISTER, target.step(REGISTER, ctx.spec))

    async def remove(ctx: Context) -> None:
        await ctx.effect(UNREGISTER, target.step(UNREGISTER, ctx.spec))

    return Operator(
        resource=GADGET,
        provision=provision,
        finalize=remove if finalize else None,
        children=(CONFIG_MAPS,),
    )


class _NoCache:
    """An empty watch cache (the observer's child sink does not read it)."""

    def get(self, namespace: str, name: str) -> None:
        return None

    def objects(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return []

    def __len__(self) -> int:
        return 0


async def child_change(loop: MemoryLoop, change: ChangeType, obj: Mapping[str, Any]) -> None:
    """Hand a ConfigMap child's change to the loop's observer, as the child watch would."""
    await loop.observer.child(
        Change(
            type=change,
            origin=ChangeOrigin.WATCH,
            resource=CONFIG_MAPS.kind_ref,
            obj=obj,
            previous=None,
            cache=_NoCache(),
        )
    )


async def journal_of(loop: MemoryLoop) -> list[Record]:
    """Every record of the loop's journal, in position order."""
    return [record async for record in loop.journal.read_all()]


async def replay(
    loop: MemoryLoop,
    *,
    finalize: bool = True,
    backoff: BackoffPolicy | None = None,
    poll: float = 5.0,
    decide: DecidePolicy = DEFAULT_POLICY,
) -> ReplayReport:
    """`replay_through_loop` of everything `loop` journaled, with a fresh operator of the
    same shape (its steps answer from the journal) and the loop's settings."""
    policy = ReplayPolicy(
        backoff=backoff or BackoffPolicy(),
        dependency_poll_seconds=poll,
        decide=decide,
    )
    return await replay_through_loop(
        await journal_of(loop), gadget_operator(finalize=finalize), policy=policy
    )
