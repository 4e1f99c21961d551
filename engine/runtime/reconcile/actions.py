"""Carrying out a decided effect: finalizer writes, handler runs through the effect
runner, status patches; a write refused for good becomes a Warning Event and ends the
reconcile (`ReconcileStopped`) instead of a retry storm."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from engine.clock import Clock
from engine.effects.errors import NotLeading, PermanentError, RetryableError
from engine.failpoint import afailpoint
from engine.fsm import events as ev
from engine.fsm.decision import (
    AddFinalizer,
    Effect,
    PatchStatus,
    RemoveFinalizer,
    RunFinalize,
    RunProvision,
)
from engine.fsm.key import FINALIZE, PROVISION
from engine.identity import Kind
from engine.runtime.queue.worker import Outcome, RetryableFailure, TerminalFailure
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.conditions import SupervisorConditions
from engine.runtime.reconcile.event_recorder import EventRecorder
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.objects import Entry, PrimaryView
from engine.runtime.reconcile.operator import Operator
from engine.runtime.reconcile.patches import PatchAnswers
from engine.runtime.reconcile.ports import ClusterWriter, EffectRunning
from engine.runtime.reconcile.progress_views import ResourceViews
from engine.runtime.reconcile.recorded_spec import restore_secrets, spec_at_generation
from engine.runtime.reconcile.secret_scrub import scrubbed
from engine.runtime.reconcile.status import status_body
from engine.runtime.reconcile.steps import StepBackend
from engine.runtime.reconcile.streams import StreamWriter
from engine.runtime.reconcile.waits import DependencyWaits
from engine.telemetry.redaction import Redactor

log = logging.getLogger("engine.runtime.reconcile.reconciler")  # the reconcile's own log, as before


class ReconcileStopped(Exception):
    """Ends the reconcile with `outcome` (a write the engine could not make)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome


class EffectActions:
    """Runs the effects `decide` asked for, against the view's newest object; after each
    of the engine's own writes the view holds the object the API server returned."""

    def __init__(
        self,
        *,
        operator: Operator,
        kind: Kind,
        streams: StreamWriter,
        cluster: ClusterWriter,
        runner: EffectRunning,
        objects: PrimaryView,
        ledger: ChildLedger,
        events: EventRecorder,
        conditions: SupervisorConditions,
        views: ResourceViews,
        clock: Clock,
        waits: DependencyWaits | None,
        may_act: Callable[[], bool],
        patches: PatchAnswers | None = None,
    ) -> None:
        self._operator = operator
        self._kind = kind
        self._streams = streams
        self._cluster = cluster
        self._runner = runner
        self._objects = objects
        self._ledger = ledger
        self._events = events
        self._conditions = conditions
        self._views = views
        self._clock = clock
        self._waits = waits
        self._may_act = may_act
        self._patches = patches
        self._logger = logging.getLogger(f"engine.operator.{operator.resource.kind.lower()}")

    async def run(self, key: str, stream: str, effect: Effect) -> None:
        """Carry out `effect` for the object at `key` (journal stream `stream`).

        Errors: `ReconcileStopped` for a write the API server refused or could not take
        now; `NotLeading` when `may_act` says no; the runner's effect errors.
        """
        entry = self._objects.get(key)
        if entry is None:
            return
        if not self._may_act():
            raise NotLeading(f"not the leader: {key} not acted on")
        finalizer = self._operator.finalizer_name
        match effect:
            case AddFinalizer():
                updated = await self._write(key, entry, self._cluster.add_finalizer, finalizer)
                if updated is not None:
                    self._objects.update(updated)
            case RemoveFinalizer():
                await afailpoint("finalizer.before_remove")
                updated = await self._write(key, entry, self._cluster.remove_finalizer, finalizer)
                await afailpoint("finalizer.after_remove")
                if updated is None or not updated.get("metadata", {}).get("finalizers"):
                    gone = updated if updated is not None else entry.obj
                    self._objects.update(
                        gone, exists=updated is not None and not _deleting(updated)
                    )
                else:
                    self._objects.update(updated)
            case RunProvision() | RunFinalize():
                await self._run_handler(stream, entry, effect)
                await afailpoint("effect.after_record")
            case PatchStatus():
                await self._patch_status(key, stream, entry, effect)

    async def _write(
        self, key: str, entry: Entry, write: Callable[..., Any], finalizer: str
    ) -> Mapping[str, Any] | None:
        try:
            result: Mapping[str, Any] | None = await write(self._kind, entry.obj, finalizer)
        except RetryableError as error:
            stop = RetryableFailure(str(error), retry_after=error.delay or None)
            raise ReconcileStopped(stop) from None
        except PermanentError as error:
            await self._refused(key, entry, error)
            raise ReconcileStopped(TerminalFailure(str(error))) from None
        return result

    async def _refused(self, key: str, entry: Entry, error: PermanentError) -> None:
        """A write the API server refuses for good: a Warning Event, no retry storm."""
        log.error("the API server refused a write for %r: %s", key, error)
        await self._events.post(
            entry.obj,
            suffix="refused",
            reason="WriteRefused",
            message=str(error),
            warning=True,
            now=self._clock.now(),
        )

    async def _run_handler(
        self, stream: str, entry: Entry, effect: RunProvision | RunFinalize
    ) -> None:
        operator = self._operator
        handler = operator.provision if isinstance(effect, RunProvision) else operator.finalize
        metadata = entry.obj.get("metadata", {})
        redactor = Redactor.from_object(entry.obj, operator.secret_fields)
        spec = await self._spec_for(stream, entry, effect.generation)
        context = Context(
            name=str(metadata.get("name") or ""),
            namespace=str(metadata.get("namespace") or ""),
            uid=entry.uid,
            generation=effect.generation,
            round=effect.round,
            spec=MappingProxyType(spec),
            metadata=MappingProxyType(dict(metadata)),
            term=self._streams.journal.term,
            logger=self._logger,
            waits=self._waits,
            backend=StepBackend(
                operator=operator,
                runner=self._runner,
                writer=self._cluster,
                ledger=self._ledger,
                stream=stream,
                owner=entry.obj,
                redactor=redactor,
                run=effect.key,
                patches=self._patches,
            ),
        )

        async def call(_: str) -> None:
            live = entry.obj.get("spec")
            if live is not None and not isinstance(live, Mapping):
                raise PermanentError(
                    f"the spec is {type(live).__name__}, not an object: fix the resource's spec"
                )
            if handler is None:
                return
            if self._waits is None:
                await handler(context)
                return
            with self._waits.attempt(f"{context.namespace}/{context.name}"):
                await handler(context)

        name = PROVISION if isinstance(effect, RunProvision) else FINALIZE
        await self._runner.run(stream, effect.key, name, scrubbed(call, redactor))

    async def _spec_for(self, stream: str, entry: Entry, generation: int) -> dict[str, Any]:
        """The spec a handler run of `generation` gets: the live one, or — when an effect
        of an older generation is resumed after a crash — that generation's, so the callee
        sees the same request under the same key (R3)."""
        observed = entry.obj.get("spec") or {}
        live = dict(observed) if isinstance(observed, Mapping) else {}  # refused in the run
        if generation == int(entry.obj.get("metadata", {}).get("generation") or 0):
            return live
        journal = self._streams.journal
        recorded = spec_at_generation(await journal.read_stream(stream), generation)
        if recorded is None:
            log.warning(
                "the spec of generation %d of %s is not in the journal in full; "
                "resuming its effect with the live spec",
                generation,
                stream,
            )
            return live
        return restore_secrets(recorded, live, self._operator.secret_fields)

    async def _patch_status(self, key: str, stream: str, entry: Entry, effect: PatchStatus) -> None:
        body = status_body(
            phase=effect.phase,
            observed_generation=effect.observed_generation,
            reason=effect.reason,
            current=entry.obj.get("status"),
            now=self._clock.now(),
            extra=self._conditions.of(key),
        )
        await afailpoint("status.before_patch")
        try:
            updated = await self._cluster.patch_status(self._kind, entry.obj, body)
        except RetryableError as error:
            stop = RetryableFailure(str(error), retry_after=error.delay or None)
            raise ReconcileStopped(stop) from None
        except PermanentError as error:
            await self._refused(key, entry, error)
            raise ReconcileStopped(TerminalFailure(str(error))) from None
        await afailpoint("status.after_patch")
        if updated is None:
            self._objects.update(entry.obj, exists=False)
            return
        self._objects.update(updated)
        written = ev.status_written(
            phase=effect.phase,
            observed_generation=effect.observed_generation,
            reason=effect.reason,
        )
        await self._streams.append(stream, [written])
        self._views.note(key, updated, event=f"status {effect.phase}", at=self._clock.now())


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))
