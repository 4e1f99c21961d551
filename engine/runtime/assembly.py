"""Wiring a controller's parts: the work queue, the Kubernetes writer, the effect runner,
dependency waits, the reconciler, the stuck watchdog and the watch observer, all sharing
one journal, one view of the primaries and one ledger of children."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from engine.clock import Clock
from engine.effects import BackoffPolicy, EffectRunner, RunnerDeps
from engine.effects.kube import KindRef, KubeWriter
from engine.fsm.decide import DecidePolicy
from engine.journal.store import Journal
from engine.runtime.children import ChildLedger
from engine.runtime.conditions import SupervisorConditions
from engine.runtime.handler_backend import SpanTracer
from engine.runtime.observer import ObservationLog, Observer, ObserverDeps
from engine.runtime.operator import Operator
from engine.runtime.queue import WorkQueue
from engine.runtime.ratelimit import KeyedBackoff, TokenBucket
from engine.runtime.reconciler import Reconciler
from engine.runtime.reconciler_deps import ReconcilerDeps
from engine.runtime.resource_view import ResourceViews
from engine.runtime.settings import Settings
from engine.runtime.states import StreamStates
from engine.runtime.view import PrimaryView
from engine.runtime.waits import DependencyWaits, WaitsDeps
from engine.runtime.watchdog import RunningReconciles, Watchdog, WatchdogDeps
from engine.supervisor.stuck import HealingPolicy
from engine.supervisor.waits_for import DeadlockPolicy
from engine.telemetry.metrics import EngineMetrics


@dataclass(frozen=True)
class Assembled:
    """The wired parts a controller runs."""

    queue: WorkQueue
    writer: KubeWriter
    reconciler: Reconciler
    observer: Observer
    watchdog: Watchdog


def assemble(
    *,
    operator: Operator,
    settings: Settings,
    api: Any,
    journal: Journal,
    clock: Clock,
    tracer: trace.Tracer,
    metrics: EngineMetrics,
    views: ResourceViews,
    conditions: SupervisorConditions,
    running: RunningReconciles,
    may_act: Callable[[], bool],
    on_observed: Callable[[str, Mapping[str, Any], str], None],
    record_events: bool,
) -> Assembled:
    """Build the parts for `operator` on `api` and `journal` (nothing starts running)."""
    queue = WorkQueue(
        backoff=KeyedBackoff(
            base=settings.backoff_base_seconds,
            cap=settings.backoff_cap_seconds,
            rng=random.Random(),
        ),
        retry_bucket=TokenBucket(qps=settings.qps, burst=settings.burst),
        max_concurrent=settings.max_concurrent_reconciles,
    )
    writer = KubeWriter(api)
    view, ledger, observations = PrimaryView(), ChildLedger(), ObservationLog(journal)
    runner = EffectRunner(
        RunnerDeps(
            journal=journal,
            clock=clock,
            backoff=BackoffPolicy(max_attempts=settings.max_effect_attempts),
            timeout=settings.effect_timeout_seconds,
            term=lambda: journal.term,
            tracer=SpanTracer(tracer),
            may_act=may_act,
        )
    )
    waits = DependencyWaits(
        WaitsDeps(
            operator=operator,
            journal=journal,
            writer=writer,
            kind=_kind_ref(operator),
            view=view,
            conditions=conditions,
            enqueue=queue.add,
            clock=clock,
            policy=DeadlockPolicy(settings.deadlock_policy),
            poll_seconds=settings.dependency_poll_seconds,
            record_events=record_events,
        )
    )
    reconciler = Reconciler(
        ReconcilerDeps(
            operator=operator,
            journal=journal,
            runner=runner,
            writer=writer,
            view=view,
            ledger=ledger,
            log=observations,
            states=StreamStates(journal, ledger=ledger, log=observations),
            views=views,
            clock=clock,
            tracer=tracer,
            metrics=metrics,
            policy=DecidePolicy(resync_after=settings.resync_seconds),
            record_events=record_events,
            may_act=may_act,
            waits=waits,
            conditions=conditions,
        )
    )
    watchdog = Watchdog(
        WatchdogDeps(
            operator=operator,
            journal=journal,
            writer=writer,
            kind=reconciler.kind,
            view=view,
            states=reconciler.states,
            conditions=conditions,
            running=running,
            enqueue=queue.add,
            clock=clock,
            deadlines=settings.stuck_deadlines,
            policy=HealingPolicy(
                enabled=settings.healing_enabled,
                max_heals_without_progress=settings.max_heals_without_progress,
            ),
            may_act=may_act,
            record_events=record_events,
            tracer=tracer,
        )
    )
    observer = Observer(
        ObserverDeps(
            operator=operator,
            view=view,
            ledger=ledger,
            log=observations,
            enqueue=waits.notify,
            on_observed=on_observed,
            tracer=tracer,
        )
    )
    return Assembled(
        queue=queue, writer=writer, reconciler=reconciler, observer=observer, watchdog=watchdog
    )


def _kind_ref(operator: Operator) -> KindRef:
    resource = operator.resource
    return KindRef(
        resource.group, resource.version, resource.plural, resource.kind, resource.namespaced
    )
