"""What stands behind a handler's `Context`: its steps run through the effect runner,
its children are applied through the `KubeWriter` (as effects too) and remembered in
the child ledger for drift detection; and the tracer that gives each attempt a span.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from engine.effects import SpanIds
from engine.effects.errors import (
    DependencyNotReady,
    EffectFailedPermanently,
    EffectRetryScheduled,
    PermanentError,
)
from engine.fsm.key import parse_key
from engine.runtime.reconcile.child_readiness import ChildReady
from engine.runtime.reconcile.children import ChildId, ChildLedger
from engine.runtime.reconcile.handler_context import EffectFn
from engine.runtime.reconcile.operator import Operator
from engine.runtime.reconcile.patches import PatchAnswers
from engine.runtime.reconcile.ports import ClusterWriter, EffectRunning
from engine.runtime.reconcile.secret_scrub import scrubbed
from engine.telemetry.redaction import NO_SECRETS, Redactor
from engine.telemetry.spans import effect_span

CHILD_POLL_SECONDS = 2.0
"""How soon a handler waiting for a child looks again (a change of the child also
enqueues its owner)."""


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """The controller ownerReference pointing at `owner`."""
    metadata = owner.get("metadata", {})
    return {
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": metadata.get("name"),
        "uid": metadata.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_manifest(manifest: Mapping[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    """`manifest` with the owner's namespace and the controller ownerReference set."""
    metadata = dict(manifest.get("metadata") or {})
    namespace = owner.get("metadata", {}).get("namespace")
    if namespace:
        metadata["namespace"] = namespace
    metadata["ownerReferences"] = [owner_reference(owner)]
    return {**manifest, "metadata": metadata}


@dataclass(frozen=True)
class StepBackend:
    """A `HandlerBackend` for one reconcile of one resource (`owner`, on `stream`).

    `apply_child` returns a small JSON result (the child's identity and
    resourceVersion, and the manifest applied) that the runner journals; on a re-run the
    recorded result is returned and the manifest is remembered again for drift.
    Errors: `PermanentError` for a manifest of an undeclared kind or without a name.
    """

    operator: Operator
    runner: EffectRunning
    writer: ClusterWriter
    ledger: ChildLedger
    stream: str
    owner: Mapping[str, Any]
    redactor: Redactor = NO_SECRETS
    """Secret values scrubbed from the text of a failing step's error (R16)."""
    run: str = ""
    """The handler run's effect key (what `ctx.patched` answers are kept under)."""
    patches: PatchAnswers | None = None

    async def patched(self, change: str) -> bool:
        if self.patches is None:
            raise RuntimeError("ctx.patched needs the engine's reconciler behind the Context")
        return await self.patches.patched(self.stream, self.run, change)

    async def deprecate_patch(self, change: str) -> None:
        if self.patches is not None:
            await self.patches.deprecated(self.stream, self.run, change)

    async def run_step(self, key: str, name: str, call: EffectFn) -> Any:
        return await self.runner.run(self.stream, key, name, scrubbed(call, self.redactor))

    async def apply_child(self, key: str, manifest: Mapping[str, Any]) -> Mapping[str, Any]:
        kind = self.operator.child_kind(
            str(manifest.get("apiVersion") or ""), str(manifest.get("kind") or "")
        )
        if kind is None:
            raise PermanentError(
                f"apply_child: {manifest.get('apiVersion')}/{manifest.get('kind')} is not a "
                "declared child kind; add it to Operator.children"
            )
        if not manifest.get("metadata", {}).get("name"):
            raise PermanentError("apply_child: the manifest needs metadata.name")
        full = child_manifest(manifest, self.owner)
        owner_uid = str(self.owner.get("metadata", {}).get("uid") or "")
        target = kind.kind_ref

        async def apply(_: str) -> dict[str, Any]:
            live = await self.writer.apply(target, full)
            self.ledger.applied(owner_uid, full, live)
            metadata = live.get("metadata", {})
            return {
                "apiVersion": live.get("apiVersion"),
                "kind": live.get("kind"),
                "metadata": {
                    "name": metadata.get("name"),
                    "namespace": metadata.get("namespace"),
                    "uid": metadata.get("uid"),
                    "resourceVersion": metadata.get("resourceVersion"),
                },
                "applied": full,
            }

        parts = parse_key(key)
        name = parts.name if parts is not None else "apply"
        result: Mapping[str, Any] = await self.runner.run(
            self.stream, key, name, scrubbed(apply, self.redactor)
        )
        applied = result.get("applied")
        if isinstance(applied, Mapping):  # a recorded result: remember it for drift
            self.ledger.applied(owner_uid, applied, None)
        return result

    async def wait_for_child(
        self, key: str, manifest: Mapping[str, Any], ready: ChildReady
    ) -> Mapping[str, Any]:
        kind = str(manifest.get("kind") or "")
        name = str(manifest.get("metadata", {}).get("name") or "")
        namespace = str(self.owner.get("metadata", {}).get("namespace") or "")
        child = ChildId(str(manifest.get("apiVersion") or ""), kind, namespace, name)

        async def check(_: str) -> dict[str, Any]:
            live = self.ledger.live(child)
            if live is None:
                raise DependencyNotReady(
                    f"{kind} {name}, which does not exist yet", delay=CHILD_POLL_SECONDS
                )
            lacking = ready(live)
            if lacking is not None:
                raise DependencyNotReady(f"{kind} {name} ({lacking})", delay=CHILD_POLL_SECONDS)
            return {
                "apiVersion": child.api_version,
                "kind": kind,
                "name": name,
                "status": dict(live.get("status") or {}),
            }

        parts = parse_key(key)
        step = parts.name if parts is not None else "ready"
        result: Mapping[str, Any] = await self.runner.run(
            self.stream, key, step, scrubbed(check, self.redactor)
        )
        return result


class SpanTracer:
    """The effect runner's `AttemptTracer`: one `effect_span` per attempt, its
    `effect.outcome` read from how the attempt ended: `succeeded`; `failed` (with the
    failure's class and whether it is retried) when the runner raises its retry or
    permanent-failure error; `error` for anything else (cancelled, not leading)."""

    def __init__(self, tracer: trace.Tracer, redactor: Redactor = NO_SECRETS) -> None:
        self._tracer = tracer
        self._redactor = redactor

    def attempt(self, *, key: str, name: str, attempt: int) -> AbstractContextManager[SpanIds]:
        return self._attempt(key=key, name=name, attempt=attempt)

    @contextmanager
    def _attempt(self, *, key: str, name: str, attempt: int) -> Iterator[SpanIds]:
        with effect_span(
            self._tracer,
            effect=name,
            idempotency_key=key,
            attempt=attempt,
            redactor=self._redactor,
        ) as span:
            ids = span.ids
            try:
                yield SpanIds(ids.trace_id, ids.span_id) if ids is not None else SpanIds()
            except EffectRetryScheduled as retry:
                span.set_outcome("failed", error_type=retry.error_class, retryable=True)
                raise
            except EffectFailedPermanently as failed:
                span.set_outcome("failed", error_type=failed.error_class, retryable=False)
                raise
            span.set_outcome("succeeded")
