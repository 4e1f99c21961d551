"""Carrying out a decided effect: finalizer writes, handler runs through the effect
runner, status patches; a write refused for good becomes a Warning Event and ends the
reconcile (`ReconcileStopped`) instead of a retry storm."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from engine.effects.errors import NotLeading, PermanentError, RetryableError
from engine.effects.kube import KindRef
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
from engine.journal.record import NewEvent
from engine.journal.store import Journal
from engine.runtime.context import Context
from engine.runtime.handler_backend import StepBackend
from engine.runtime.reconciler_deps import ReconcilerDeps
from engine.runtime.recorded_spec import restore_secrets, spec_at_generation
from engine.runtime.secret_scrub import scrubbed
from engine.runtime.status import status_body
from engine.runtime.view import Entry
from engine.runtime.worker import Outcome, RetryableFailure, TerminalFailure
from engine.telemetry.redaction import Redactor
from engine.telemetry.spans import current_ids

log = logging.getLogger("engine.runtime.reconciler")  # the reconcile's own log, as before


class ReconcileStopped(Exception):
    """Ends the reconcile with `outcome` (a write the engine could not make)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome


async def append_traced(journal: Journal, stream: str, event: NewEvent) -> int:
    """Append `event` carrying the current span's ids; its position."""
    ids = current_ids()
    if ids is not None:
        event = replace(event, trace_id=ids.trace_id, span_id=ids.span_id)
    positions = await journal.append(stream, [event])
    return positions[0]


class EffectActions:
    """Runs the effects `decide` asked for, against the view's newest object; after each
    of the engine's own writes the view holds the object the API server returned."""

    def __init__(self, deps: ReconcilerDeps, kind: KindRef) -> None:
        self._deps = deps
        self._kind = kind
        self._logger = logging.getLogger(f"engine.operator.{deps.operator.resource.kind.lower()}")

    async def run(self, key: str, stream: str, effect: Effect) -> None:
        """Carry out `effect` for the object at `key` (journal stream `stream`).

        Errors: `ReconcileStopped` for a write the API server refused or could not take
        now; `NotLeading` when `may_act` says no; the runner's effect errors.
        """
        deps = self._deps
        entry = deps.view.get(key)
        if entry is None:
            return
        if deps.may_act is not None and not deps.may_act():
            raise NotLeading(f"not the leader: {key} not acted on")
        finalizer = deps.operator.finalizer_name
        match effect:
            case AddFinalizer():
                updated = await self._write(key, entry, deps.writer.add_finalizer, finalizer)
                if updated is not None:
                    deps.view.update(updated)
            case RemoveFinalizer():
                await afailpoint("finalizer.before_remove")
                updated = await self._write(key, entry, deps.writer.remove_finalizer, finalizer)
                await afailpoint("finalizer.after_remove")
                if updated is None or not updated.get("metadata", {}).get("finalizers"):
                    gone = updated if updated is not None else entry.obj
                    deps.view.update(gone, exists=updated is not None and not _deleting(updated))
                else:
                    deps.view.update(updated)
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
        if not self._deps.record_events:
            return
        with contextlib.suppress(RetryableError, PermanentError):
            await self._deps.writer.record_event(
                entry.obj,
                name=f"{entry.obj['metadata']['name']}.{entry.uid[:8]}.refused",
                reason="WriteRefused",
                message=str(error),
                warning=True,
                now=self._deps.clock.now(),
            )

    async def _run_handler(
        self, stream: str, entry: Entry, effect: RunProvision | RunFinalize
    ) -> None:
        deps = self._deps
        handler = (
            deps.operator.provision if isinstance(effect, RunProvision) else deps.operator.finalize
        )
        metadata = entry.obj.get("metadata", {})
        redactor = Redactor.from_object(entry.obj, deps.operator.secret_fields)
        spec = await self._spec_for(stream, entry, effect.generation)
        context = Context(
            name=str(metadata.get("name") or ""),
            namespace=str(metadata.get("namespace") or ""),
            uid=entry.uid,
            generation=effect.generation,
            round=effect.round if isinstance(effect, RunProvision) else 0,
            spec=MappingProxyType(spec),
            metadata=MappingProxyType(dict(metadata)),
            term=deps.term() if deps.term is not None else deps.journal.term,
            logger=self._logger,
            waits=deps.waits,
            backend=StepBackend(
                operator=deps.operator,
                runner=deps.runner,
                writer=deps.writer,
                ledger=deps.ledger,
                stream=stream,
                owner=entry.obj,
                redactor=redactor,
            ),
        )

        async def call(_: str) -> None:
            if handler is None:
                return
            if deps.waits is None:
                await handler(context)
                return
            with deps.waits.attempt(f"{context.namespace}/{context.name}"):
                await handler(context)

        name = PROVISION if isinstance(effect, RunProvision) else FINALIZE
        await deps.runner.run(stream, effect.key, name, scrubbed(call, redactor))

    async def _spec_for(self, stream: str, entry: Entry, generation: int) -> dict[str, Any]:
        """The spec a handler run of `generation` gets: the live one, or — when an effect
        of an older generation is resumed after a crash — that generation's, so the callee
        sees the same request under the same key (R3)."""
        live = dict(entry.obj.get("spec") or {})
        if generation == int(entry.obj.get("metadata", {}).get("generation") or 0):
            return live
        recorded = spec_at_generation(await self._deps.journal.read_stream(stream), generation)
        if recorded is None:
            log.warning(
                "the spec of generation %d of %s is not in the journal in full; "
                "resuming its effect with the live spec",
                generation,
                stream,
            )
            return live
        return restore_secrets(recorded, live, self._deps.operator.secret_fields)

    async def _patch_status(self, key: str, stream: str, entry: Entry, effect: PatchStatus) -> None:
        deps = self._deps
        body = status_body(
            phase=effect.phase,
            observed_generation=effect.observed_generation,
            reason=effect.reason,
            current=entry.obj.get("status"),
            now=deps.clock.now(),
            extra=deps.conditions.of(key) if deps.conditions is not None else (),
        )
        await afailpoint("status.before_patch")
        try:
            updated = await deps.writer.patch_status(self._kind, entry.obj, body)
        except RetryableError as error:
            stop = RetryableFailure(str(error), retry_after=error.delay or None)
            raise ReconcileStopped(stop) from None
        except PermanentError as error:
            await self._refused(key, entry, error)
            raise ReconcileStopped(TerminalFailure(str(error))) from None
        await afailpoint("status.after_patch")
        if updated is None:
            deps.view.update(entry.obj, exists=False)
            return
        deps.view.update(updated)
        await append_traced(
            deps.journal,
            stream,
            ev.status_written(
                phase=effect.phase,
                observed_generation=effect.observed_generation,
                reason=effect.reason,
            ),
        )
        deps.views.note(key, updated, event=f"status {effect.phase}", at=deps.clock.now())


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))
