"""Run ONE provision or finalize of an operator against in-memory parts, no API server:
a real `EffectRunner` over a `MemoryJournal`, the runtime's own step backend over a
`MemoryCluster`, and a fake clock. The result says which children were applied, which
effects were called under which keys, and the status the engine would write.

The spec is admitted as the API server would (the CRD schema's defaults applied; a spec
the schema refuses raises `SpecRefused`). Steps are idempotent across runs of one
environment, as in the engine: a second `provision` of the same generation calls only
the steps that did not succeed before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from engine import Context, Operator
from engine.apiserver.schema.custom import admit
from engine.clock import FakeClock
from engine.effects import EffectRunner, RunnerDeps
from engine.effects.backoff import DEFAULT_BACKOFF, BackoffPolicy
from engine.effects.errors import DependencyNotReady, EffectFailedPermanently, RetryableError
from engine.failpoint import FailpointTriggered
from engine.fsm import events as ev
from engine.fsm.key import effect_key
from engine.journal.memory import MemoryJournal
from engine.journal.record import Record, stream_name
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.memory_cluster import MemoryCluster
from engine.runtime.reconcile.status import status_body
from engine.runtime.reconcile.steps import StepBackend

Outcome = Literal["succeeded", "retry", "failed", "crashed"]
HANDLER_PHASES = {"provision": ("Ready", "Provisioning"), "finalize": ("Deleted", "Finalizing")}


class SpecRefused(ValueError):
    """The spec given to a run is one the CRD's schema refuses (the API server would
    answer 422); the message names the first field and why."""


@dataclass(frozen=True)
class EffectCall:
    """One step the handler ran in this run: its name, key, and result (None if it failed)."""

    name: str
    key: str
    result: Any
    succeeded: bool


@dataclass(frozen=True)
class HandlerRun:
    """What one handler run did.

    `outcome`: "succeeded"; "retry" (a retryable failure: the engine requeues after
    `retry_after` seconds); "failed" (a `PermanentError` or the attempts ran out:
    `Failed`, with `reason`); "crashed" (an armed failpoint fired: the engine would have
    died here, and the next run resumes the steps left in flight under the same keys).
    `children` are the manifests applied in this run (with
    namespace and ownerReference set), `effects` the other steps called in this run.
    """

    outcome: Outcome
    status: Mapping[str, Any]
    children: tuple[Mapping[str, Any], ...]
    effects: tuple[EffectCall, ...]
    reason: str | None = None
    retry_after: float | None = None
    error: BaseException | None = None
    records: tuple[Record, ...] = ()

    @property
    def phase(self) -> str:
        return str(self.status.get("phase"))

    def effect_keys(self) -> list[str]:
        """The keys of the effects called in this run, in order."""
        return [call.key for call in self.effects]

    def step_names(self) -> list[str]:
        """Every step started in this run, child applies included, in order (for example
        `["apply.configmap.blog-config", "register"]`)."""
        handler = {"provision", "finalize"}
        return [
            str(r.data.get("name"))
            for r in self.records
            if r.type == ev.EFFECT_STARTED and r.data.get("name") not in handler
        ]


@dataclass
class _ReadySet:
    """The `ReadinessWaits` of the environment: `namespace/name`s that count as Ready."""

    ready: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    async def wait_until_ready(self, waiter: str, target: str) -> None:
        self.asked.append(target)
        if target not in self.ready:
            raise DependencyNotReady(target, delay=1.0)


class HandlerEnvironment:
    """In-memory parts for running `operator`'s handlers one at a time.

    `cluster` and `journal` are kept between runs (read them in assertions); `clock` is a
    `FakeClock` (`clock.advance(s)` to move past a retry delay); `ready` lists the
    `namespace/name`s `ctx.wait_until_ready` finds Ready.
    """

    def __init__(
        self,
        operator: Operator,
        *,
        clock: FakeClock | None = None,
        term: int = 1,
        backoff: BackoffPolicy = DEFAULT_BACKOFF,
        ready: Iterable[str] = (),
    ) -> None:
        self.operator = operator
        self.clock = clock or FakeClock()
        self.term = term
        self.cluster = MemoryCluster(clock=self.clock)
        self.journal = MemoryJournal(clock=self.clock, redact=tuple(operator.secret_fields))
        self.waits = _ReadySet(set(ready))
        self._runner = EffectRunner(
            RunnerDeps(
                journal=self.journal,
                clock=self.clock,
                backoff=backoff,
                term=lambda: self.term,
            )
        )
        self._ledger = ChildLedger()

    def set_child_status(
        self, kind: str, name: str, status: Mapping[str, Any], *, namespace: str = "default"
    ) -> None:
        """Give an applied child the status its controller would write (a Deployment's
        `availableReplicas`, a Job's Complete condition), so `ctx.wait_for_child` in the
        next run finds it ready. Errors: `LookupError` when no such child was applied."""
        for child in self.operator.children:
            if child.kind != kind:
                continue
            live = self.cluster.get(child.kind_ref, namespace, name)
            if live is None:
                break
            generation = (live.get("metadata") or {}).get("generation", 1)
            stored = self.cluster.put(
                child.kind_ref,
                {**live, "status": {"observedGeneration": generation, **dict(status)}},
            )
            self._ledger.observed(live, deleted=False)  # the watch shows the apply first
            self._ledger.observed(stored, deleted=False)
            return
        raise LookupError(f"no {kind} {namespace}/{name} was applied: apply it first")

    async def provision(
        self,
        spec: Mapping[str, Any],
        *,
        name: str = "sample",
        namespace: str = "default",
        generation: int = 1,
        round: int = 0,
        uid: str | None = None,
    ) -> HandlerRun:
        """Run `provision` once for an object with `spec` (uid default: `uid-<name>`)."""
        return await self._run(
            "provision", spec, name=name, namespace=namespace, generation=generation,
            round=round, uid=uid,
        )  # fmt: skip

    async def finalize(
        self,
        spec: Mapping[str, Any],
        *,
        name: str = "sample",
        namespace: str = "default",
        generation: int = 1,
        round: int = 0,
        uid: str | None = None,
    ) -> HandlerRun:
        """Run `finalize` once (an operator without one succeeds at once)."""
        return await self._run(
            "finalize", spec, name=name, namespace=namespace, generation=generation,
            round=round, uid=uid,
        )  # fmt: skip

    async def _run(
        self,
        which: str,
        spec: Mapping[str, Any],
        *,
        name: str,
        namespace: str,
        generation: int,
        round: int,
        uid: str | None,
    ) -> HandlerRun:
        resource = self.operator.resource
        uid = uid or f"uid-{name}"
        metadata = {"name": name, "namespace": namespace, "uid": uid, "generation": generation}
        owner = _admitted(
            {"apiVersion": resource.api_version, "kind": resource.kind,
             "metadata": metadata, "spec": dict(spec)},
            resource.schema,
        )  # fmt: skip
        spec = owner.get("spec") or {}
        stream = stream_name(group=resource.group, kind=resource.kind, namespace=namespace,
                             name=name, uid=uid)  # fmt: skip
        backend = StepBackend(
            operator=self.operator,
            runner=self._runner,
            writer=self.cluster,
            ledger=self._ledger,
            stream=stream,
            owner=owner,
        )
        context = Context(
            name=name,
            namespace=namespace,
            uid=uid,
            generation=generation,
            round=round,
            spec=MappingProxyType(dict(spec)),
            metadata=MappingProxyType(metadata),
            term=self.term,
            logger=logging.getLogger(f"engine.testing.{resource.kind.lower()}"),
            backend=backend,
            waits=self.waits,
        )
        handler = self.operator.provision if which == "provision" else self.operator.finalize
        start = await self.journal.stream_version(stream)
        applied_before = len(self.cluster.applied)

        async def run_handler(_: str) -> None:
            if handler is not None:
                await handler(context)

        done, retry = HANDLER_PHASES[which]
        outcome: Outcome = "succeeded"
        reason: str | None = None
        retry_after: float | None = None
        error: BaseException | None = None
        key = effect_key(uid, generation, which, round)
        try:
            await self._runner.run(stream, key, which, run_handler)
        except EffectFailedPermanently as failed:
            outcome, reason, error = "failed", failed.reason, failed
        except RetryableError as retrying:
            outcome, reason, error = "retry", str(retrying), retrying
            retry_after = retrying.delay
        except FailpointTriggered as crash:
            outcome, reason, error = "crashed", str(crash), crash
        phase = {"succeeded": done, "retry": retry, "failed": "Failed", "crashed": retry}[outcome]
        status = status_body(phase=phase, observed_generation=generation, reason=reason,
                             current=None, now=self.clock.now())  # fmt: skip
        records = tuple(await self.journal.read_stream(stream, start + 1))
        return HandlerRun(
            outcome=outcome,
            status=status,
            children=tuple(self.cluster.applied[applied_before:]),
            effects=_calls(records, handler_key=key),
            reason=reason,
            retry_after=retry_after,
            error=error,
            records=records,
        )


def _admitted(obj: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    admission = admit(obj, schema)
    if admission.causes:
        first = admission.causes[0]
        raise SpecRefused(f"the schema refuses {first.field}: {first.message}")
    return admission.obj


def _calls(records: Iterable[Record], *, handler_key: str) -> tuple[EffectCall, ...]:
    """The steps started in `records` (not the handler itself, nor child applies)."""
    started: dict[str, str] = {}
    ended: dict[str, tuple[Any, bool]] = {}
    for record in records:
        key = str(record.data.get("key", ""))
        if key == handler_key:
            continue
        if record.type == ev.EFFECT_STARTED:
            started.setdefault(key, str(record.data.get("name", "")))
        elif record.type in (ev.EFFECT_SUCCEEDED, ev.EFFECT_FAILED):
            ended[key] = (record.data.get("result"), record.type == ev.EFFECT_SUCCEEDED)
    return tuple(
        EffectCall(name=name, key=key, result=ended.get(key, (None, False))[0],
                   succeeded=ended.get(key, (None, False))[1])
        for key, name in started.items()
        if not name.startswith("apply.")
    )  # fmt: skip
