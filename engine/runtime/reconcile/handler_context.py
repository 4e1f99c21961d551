"""The one object a handler receives: what it is reconciling and what it may do."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine.fsm.key import effect_key
from engine.runtime.reconcile.child_readiness import ChildReady, readiness_of

EffectFn = Callable[[str], Awaitable[Any]]
"""An external call: receives its idempotency key, returns a JSON-serialisable result."""


class HandlerBackend(Protocol):
    """What the reconciler provides behind a `Context` (one per handler run)."""

    async def run_step(self, key: str, name: str, call: EffectFn) -> Any:
        """Run one step under `key` through the effect runner."""
        ...

    async def apply_child(self, key: str, manifest: Mapping[str, Any]) -> Mapping[str, Any]:
        """Apply `manifest` as an owned child under effect `key`; return the live object."""
        ...

    async def wait_for_child(
        self, key: str, manifest: Mapping[str, Any], ready: ChildReady
    ) -> Mapping[str, Any]:
        """Under effect `key`: the child's recorded status once `ready` passes on its live
        state, else raise `DependencyNotReady`."""

    async def patched(self, change: str) -> bool:
        """This handler run's answer for `change` (journaled the first time it is asked)."""
        ...

    async def deprecate_patch(self, change: str) -> None:
        """`change` is always taken now; a marker recorded by older runs still replays."""
        ...


class ReadinessWaits(Protocol):
    """What stands behind `Context.wait_until_ready` (the engine's waits-for graph)."""

    async def wait_until_ready(self, waiter: str, target: str) -> None:
        """Return when `target` (`namespace/name`) is Ready; otherwise record that
        `waiter` waits for it and raise `DependencyNotReady` (or `PermanentError` when the
        wait must be broken)."""
        ...


@dataclass(frozen=True)
class Context:
    """Everything a provision or finalize handler needs, in one value.

    Guarantees: `spec` and `metadata` are the object as observed when the reconcile
    began (read-only copies); `term` is the leader term (fencing token) to pass to
    external services; every step runs under a deterministic idempotency key
    `<uid>:<generation>:<step>[:<round>]`, so a step recorded as done is never run
    again for this generation and round.
    """

    name: str
    namespace: str
    uid: str
    generation: int
    round: int
    spec: Mapping[str, Any]
    metadata: Mapping[str, Any]
    term: int
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
    backend: HandlerBackend
    waits: ReadinessWaits | None = None

    def key(self, step: str) -> str:
        """The idempotency key step `step` runs under in this generation and round."""
        return effect_key(self.uid, self.generation, step, self.round)

    async def effect(self, step: str, call: EffectFn) -> Any:
        """Run `call(key)` once for this generation and round, journaled as effect `step`.

        `step` is lowercase letters, digits, '-', '_' or '.'. Returns the call's result,
        or the recorded result when the step already succeeded. Errors: the call's
        `PermanentError`; a retryable failure propagates as `EffectRetryScheduled`.
        """
        return await self.backend.run_step(self.key(step), step, call)

    async def wait_until_ready(self, name: str, namespace: str | None = None) -> None:
        """Go on only once the resource `name` of the same kind (in `namespace`, default
        this one's) is Ready.

        When it is not, this provision attempt ends here (`DependencyNotReady`, retried
        every little while and when that resource changes) and the engine records the
        wait in its waits-for graph; a wait cycle is reported as a deadlock on every
        member. Call it before the steps that need the other resource.
        Errors: `DependencyNotReady`; `PermanentError` when the engine breaks a deadlock
        by failing this resource; `RuntimeError` without the engine behind the Context.
        """
        if self.waits is None:
            raise RuntimeError("wait_until_ready needs the engine's reconciler behind the Context")
        target = f"{namespace or self.namespace}/{name}"
        await self.waits.wait_until_ready(f"{self.namespace}/{self.name}", target)

    async def patched(self, change: str) -> bool:
        """Whether this handler run takes the new path of change `change` (a name of
        your own, e.g. "add-audit-step"): True for work that started under the code
        running now, False for work that began under an older version (resumed after a
        restart or a deploy) and when replaying work that never asked. The first answer
        of a run is journaled (`PatchMarker`) and every later one (a retry, a restart,
        `engine replay --verify`) reads it back, so one run never changes course.
        Call it where the steps differ; see docs/upgrades.md.
        """
        return await self.backend.patched(change)

    async def deprecate_patch(self, change: str) -> None:
        """Declare that every run takes the new path of `change` now (no old work is
        left: `engine journal versions` shows which resources still run which version).
        Records nothing; a journal holding the change's old markers still replays."""
        await self.backend.deprecate_patch(change)

    async def apply_child(self, manifest: Mapping[str, Any]) -> Mapping[str, Any]:
        """Create or update a child object, owned by this resource.

        The manifest needs `apiVersion`, `kind` and a deterministic `metadata.name`; the
        engine sets the namespace and the controller ownerReference, and applies it
        idempotently (server-side apply). Returns the live child. The step is named
        `apply.<kind>.<name>` (lowercased).
        """
        kind = str(manifest.get("kind", "")).lower()
        name = str(manifest.get("metadata", {}).get("name", ""))
        return await self.backend.apply_child(self.key(f"apply.{kind}.{name}"), manifest)

    async def wait_for_child(
        self, manifest: Mapping[str, Any], ready: ChildReady | None = None
    ) -> Mapping[str, Any]:
        """Go on only once the child `manifest` names (applied with `apply_child`) is ready.

        `ready(live)` says what the live child still lacks (None when it is ready); by
        default the kind's own check: a Deployment rolled out and available, a
        StatefulSet's replicas ready, a Job complete (a failed Job is a `PermanentError`),
        any other kind once it exists. When it is not ready this attempt ends here
        (`DependencyNotReady`, looked at again every two seconds; waiting never counts
        toward giving up). Once ready, the step
        `ready.<kind>.<name>` is recorded with the child's status, which it returns, so a
        re-run or a replay goes on without looking again.
        """
        check = ready or readiness_of(
            str(manifest.get("apiVersion", "")), str(manifest.get("kind", ""))
        )
        kind = str(manifest.get("kind", "")).lower()
        name = str(manifest.get("metadata", {}).get("name", ""))
        return await self.backend.wait_for_child(self.key(f"ready.{kind}.{name}"), manifest, check)
