"""What a `Reconciler` is built from: the operator, the journal, the effect runner, the
Kubernetes writer, the views and caches, and the supervision hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import trace

from engine.clock import Clock
from engine.effects import EffectRunner
from engine.effects.kube import KubeWriter
from engine.fsm.decide import DEFAULT_POLICY, DecidePolicy
from engine.journal.store import Journal
from engine.runtime.children import ChildLedger
from engine.runtime.conditions import SupervisorConditions
from engine.runtime.observer import ObservationLog
from engine.runtime.operator import Operator
from engine.runtime.resource_view import ResourceViews
from engine.runtime.states import StreamStates
from engine.runtime.view import PrimaryView
from engine.runtime.waits import DependencyWaits
from engine.telemetry.metrics import EngineMetrics


@dataclass(frozen=True)
class ReconcilerDeps:
    """Everything a reconcile needs. `max_passes` bounds decide→act loops per reconcile;
    `record_events` turns the Kubernetes Event per transition on or off. Supervision:
    `may_act` is asked before each Kubernetes write (False: stop and requeue);
    `waits` backs `Context.wait_until_ready`; `conditions` are the supervisor's extra
    status conditions, kept on every status patch."""

    operator: Operator
    journal: Journal
    runner: EffectRunner
    writer: KubeWriter
    view: PrimaryView
    ledger: ChildLedger
    log: ObservationLog
    states: StreamStates
    views: ResourceViews
    clock: Clock
    tracer: trace.Tracer
    metrics: EngineMetrics | None = None
    policy: DecidePolicy = DEFAULT_POLICY
    term: Callable[[], int] | None = None
    max_passes: int = 16
    record_events: bool = True
    may_act: Callable[[], bool] | None = None
    waits: DependencyWaits | None = None
    conditions: SupervisorConditions | None = None
