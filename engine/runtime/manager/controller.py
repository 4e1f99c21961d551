"""`Controller`: the running engine. It assembles the journal, the Kubernetes writer,
the watchers (primary and children), the work queue and its workers, the health
endpoints and the metrics, runs until stopped (or SIGTERM/SIGINT), and shuts down in
order: watches first, then the queue drained (bounded), then the journal and tracing.
It is the one composition root: `_build` wires every part; the watches are kept in
`watch_set`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import trace

from engine.clock import Clock, SystemClock
from engine.effects import BackoffPolicy, EffectRunner, PermanentError, RetryableError, RunnerDeps
from engine.effects.kube import KubeWriter
from engine.fsm.decide import DecidePolicy
from engine.fsm.table import DELETED
from engine.identity import StreamId
from engine.journal.errors import CorruptJournal, NotAJournal
from engine.journal.location import is_postgres, open_journal, sqlite_path
from engine.journal.quarantine import quarantinable, quarantine
from engine.journal.record import Record
from engine.journal.sqlite import SqliteJournal
from engine.journal.store import Journal
from engine.runtime.manager.health import Check, HealthDependencies, HealthServer
from engine.runtime.manager.leadership import Leadership, LeadershipDeps
from engine.runtime.manager.missed_deletes import (
    MissedDeps,
    deliver_replacements,
    observe_missed,
)
from engine.runtime.manager.readiness import (
    ApiReachability,
    JournalCommits,
    KindServed,
    ProbeTiming,
    kind_served,
)
from engine.runtime.manager.settings import Settings
from engine.runtime.manager.start_scan import (
    JOURNAL_FILE,
    EarlyScan,
    StartScan,
    journal_file,
    open_runs,
    scan,
)
from engine.runtime.manager.watches import Watches
from engine.runtime.queue.limits import KeyedBackoff, TokenBucket
from engine.runtime.queue.work_queue import WorkQueue
from engine.runtime.queue.worker import Outcome, RequeueAfter
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.conditions import DEADLOCKED, STUCK, SupervisorConditions
from engine.runtime.reconcile.event_recorder import EventRecorder
from engine.runtime.reconcile.history_warning import HistoryWarnings
from engine.runtime.reconcile.inbox import Inbox
from engine.runtime.reconcile.objects import PrimaryView
from engine.runtime.reconcile.observations import ObservationLog, Observer, ObserverDeps
from engine.runtime.reconcile.operator import Operator
from engine.runtime.reconcile.progress_views import ResourceView, ResourceViews
from engine.runtime.reconcile.reconciler import Reconciler
from engine.runtime.reconcile.steps import SpanTracer
from engine.runtime.reconcile.streams import StreamWriter
from engine.runtime.reconcile.waits import DependencyWaits
from engine.runtime.sharding.coordinator import ShardCoordinator, ShardingConfig, ShardRunDeps
from engine.runtime.sharding.fenced_journal import ShardFencedJournal
from engine.runtime.sharding.metrics import ShardMetrics
from engine.runtime.sharding.observer import ShardedObserver
from engine.runtime.supervision.watchdog import RunningReconciles, Watchdog, watchdog_period
from engine.supervisor.leader import default_identity
from engine.supervisor.loop_lag import LoopLagConfig, LoopLagMonitor
from engine.supervisor.stuck import HealingPolicy
from engine.supervisor.waits_for import DeadlockPolicy
from engine.telemetry.journal_metrics import MeteredJournal
from engine.telemetry.metrics import EngineMetrics
from engine.telemetry.setup import TracingHandle
from engine.watchers import (
    Kind,
    KubeResources,
    RestartReason,
    connect_in_cluster,
    connect_kubeconfig,
    server_answers,
)

log = logging.getLogger(__name__)

_SERVER_RESTORED = (RestartReason.TOO_LARGE, RestartReason.EXPIRED)
"""Restart reasons a restore from a backup gives a watch: a resume point the restored
server has not reached (504 `ResourceVersionTooLarge`), or, restored with the revision
bumped (`engine apiserver restore`, etcd's `--bump-revision --mark-compacted`), one it
has marked compacted (410 Expired). A 410 also comes from a watch that fell behind the
server's compaction; relisting every kind then costs a list of each, and the hold lasts
as long as those lists take."""

RELIST_HOLD_SECONDS = 0.2
"""How soon a key held while the watches relist after an API server restore is looked
at again."""


@dataclass(frozen=True)
class ControllerDeps:
    """What a `Controller` runs with.

    - `operator`, `settings`: what to reconcile and how (namespaces, concurrency,
      timeouts, health port, journal mode, ...).
    - `api_client`: a kubernetes-asyncio `ApiClient` the caller owns; when None the
      controller connects from `settings.kubeconfig` / `settings.in_cluster` (and closes
      that client at the end).
    - `journal`: a journal the caller owns; when None the controller opens
      `journal_path` (default `<settings.state_dir>/journal.db`) and closes it.
    - `clock`, `metrics` (a fresh `EngineMetrics` when None), `tracing` (its tracer is
      used and it is shut down at the end; None: no spans recorded).
    - `serve_health`: serve /healthz, /readyz, /metrics on `settings.health_host:port`.
    - `handle_signals`: stop gracefully on SIGTERM and SIGINT (main thread only).
    - `record_events`: a Kubernetes Event per reconcile that took transitions.
    - `shutdown_timeout`: seconds the queue may take to drain in-flight reconciles.
    - `early_scan`: the start-up scan begun before the controller (`start_scan.begin`,
      by `engine run`); used if it read the journal the controller opens as it is then.
    """

    operator: Operator
    settings: Settings = field(default_factory=Settings)
    api_client: Any = None
    journal: Journal | None = None
    journal_path: Path | None = None
    clock: Clock = field(default_factory=SystemClock)
    metrics: EngineMetrics | None = None
    tracing: TracingHandle | None = None
    serve_health: bool = True
    handle_signals: bool = True
    record_events: bool = True
    shutdown_timeout: float = 10.0
    early_scan: EarlyScan | None = None


class Controller:
    """Runs one operator until stopped.

    Expected flow: `task = asyncio.create_task(controller.run())`; `await
    controller.ready.wait()` (every watch listed once, in-flight work enqueued first,
    workers running); read `controller.snapshot()` for a live view; `await
    controller.stop()` (or SIGTERM) to shut down gracefully; `run()` then returns.
    Errors from `run()`: the connection and journal errors of start-up
    (`ClusterConfigError`, `ClusterUnreachableError`, `JournalError` subclasses), each
    with a message that says what to do.
    """

    def __init__(self, deps: ControllerDeps) -> None:
        self._deps = deps
        self.ready = asyncio.Event()
        """Set once caches are synced, in-flight work is enqueued and workers run."""
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        self._views = ResourceViews()
        self._watches = Watches(
            operator=deps.operator,
            settings=deps.settings,
            clock=deps.clock,
            on_restart=self._count_restart,
        )
        self._queue: WorkQueue | None = None
        self._writer: KubeWriter | None = None
        self._running = RunningReconciles()
        self._conditions = SupervisorConditions()
        self._leadership: Leadership | None = None
        self._sharding: ShardCoordinator | None = None
        self._objects: PrimaryView | None = None
        self._ledger: ChildLedger | None = None
        self._observations: ObservationLog | None = None
        self._in_flight_at_start: tuple[str, ...] | None = None
        """The in-flight streams the start-up scan found, until they are enqueued."""
        self._observed_at_start: tuple[Record, ...] | None = None
        """The start-up scan's last observations, until the first list is complete."""
        self._watchdog: Watchdog | None = None
        self._loop_lag = LoopLagMonitor(
            LoopLagConfig(
                warn_after=deps.settings.loop_lag_warn_seconds,
                unhealthy_after=deps.settings.loop_lag_unhealthy_seconds,
            ),
            on_lag=self._lagged,
        )
        self.metrics = deps.metrics or EngineMetrics()
        self._metered: MeteredJournal | None = None
        self.health_url: str | None = None
        """The health server's base URL once it runs (port 0 picks a free port)."""
        timing = ProbeTiming(
            period=deps.settings.readiness_probe_seconds,
            timeout=max(deps.settings.readiness_probe_seconds, 1.0),
            unreachable_after=deps.settings.api_unreachable_seconds,
        )
        self._timing = timing
        self._commits = JournalCommits(None, timing)
        self._reach: ApiReachability | None = None
        self._served: KindServed | None = None
        self._quarantined: str | None = None
        """What was wrong with the journal renamed aside at start, if one was."""
        self._opened_head: Any = None
        """The head of the SQLite journal the controller opened itself, once opened."""

    # -- public ----------------------------------------------------------------------------

    def snapshot(self) -> tuple[ResourceView, ...]:
        """Every resource the engine knows, with its state, generation and last event."""
        return self._views.snapshot()

    def changed_since(self, serial: int) -> tuple[int, tuple[ResourceView, ...]]:
        """The serial of the newest view change, and the views changed after `serial`."""
        return self._views.changed_since(serial)

    def count(self, *, state: str, phase: str) -> int:
        """How many resources are in `state` with status phase `phase` (cheap to poll)."""
        return self._views.count(state=state, phase=phase)

    @property
    def leadership(self) -> Leadership | None:
        """Who may act (the elector, the term), once `run()` has assembled it."""
        return self._leadership

    @property
    def sharding(self) -> ShardCoordinator | None:
        """The shards this replica holds (setting `shards`), once `run()` assembled it."""
        return self._sharding

    @property
    def watchdog(self) -> Watchdog | None:
        """The stuck-resource watchdog, once `run()` has assembled it."""
        return self._watchdog

    @property
    def requests_sent(self) -> int:
        """Kubernetes write requests the engine sent (finalizers, status, children, Events)."""
        return self._writer.requests if self._writer is not None else 0

    async def stop(self) -> None:
        """Ask `run()` to shut down and wait until it has (returns at once if not running)."""
        self._stopping.set()
        if self._queue is not None or self._watches.tasks:
            await self._finished.wait()

    async def run(self) -> None:
        """Run until `stop()` or a signal; clean up whatever was started."""
        deps = self._deps
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(self._finished.set)
            api = deps.api_client
            if api is None:
                api = await self._connect()
                stack.push_async_callback(api.close)
            journal = deps.journal
            if journal is not None:
                _check_redaction(journal, deps.operator.secret_fields)
            if journal is None:
                journal = await self._open_journal()
                stack.push_async_callback(journal.close)
                if isinstance(journal, SqliteJournal):
                    self._opened_head = journal.head
            self._commits = JournalCommits(
                journal.probe_commit if isinstance(journal, SqliteJournal) else None,
                self._timing,
            )
            self._reach = ApiReachability(
                lambda: server_answers(api, seconds=self._timing.timeout),
                self._timing,
                deps.clock,
            )
            self._served = self._kind_served(api)
            probes = (("journal", self._commits), ("api-server", self._reach))
            for name, probe in (*probes, ("resource", self._served)):
                task = asyncio.create_task(probe.run(), name=f"readiness-{name}")
                stack.push_async_callback(_cancel, task)
            if deps.settings.shards:
                journal = self._sharded_journal(api, journal)
            journal = self._metered = MeteredJournal(journal, self.metrics)
            if deps.tracing is not None:
                stack.callback(deps.tracing.shutdown)
            if deps.handle_signals:
                self._install_signals(stack)
            tracer = deps.tracing.tracer if deps.tracing is not None else trace.NoOpTracer()
            reconciler, observer = self._build(api, journal, tracer)
            if self._writer is not None:
                stack.push_async_callback(self._writer.close)  # after the queue drained
            await self._report_quarantine()
            lag = asyncio.create_task(self._loop_lag.run(), name="event-loop-lag")
            stack.push_async_callback(_cancel, lag)
            if deps.serve_health:
                server = HealthServer(
                    self._health(),
                    host=deps.settings.health_host,
                    port=deps.settings.health_port,
                    timeline_journal=self._timeline_journal(),
                )
                await stack.enter_async_context(server)
                self.health_url = server.url
            # the first lists are fetched while the scan reads the journal; the listed
            # primaries reach the observer once the scan has seeded it
            scanning = asyncio.create_task(self._scan_journal(), name="start-scan")
            self._watches.start(api, observer, primary_after=scanning)
            stack.push_async_callback(self._watches.stop)
            await scanning
            if not await self._watches.wait_synced(self._stopping):
                return
            await self._observe_missed(journal, reconciler, observer, stack)
            if self._sharding is not None:
                await self._sharding.start(
                    ShardRunDeps(
                        journal=self._require_fenced(journal),
                        queue=self._require_queue(),
                        handler=self._handler(reconciler),
                        workers=deps.settings.max_concurrent_reconciles,
                        enqueue_in_flight=lambda accepts: self._enqueue_in_flight(
                            journal, reconciler, accepts
                        ),
                        cached_keys=self._objects_keys,
                    )
                )
                stack.push_async_callback(self._sharding.stop, deps.shutdown_timeout)
                if isinstance(observer, ShardedObserver):
                    stack.push_async_callback(observer.stop)  # after the watches, before it
                stack.push_async_callback(self._watches.stop)  # runs before the drain
                await self._run_started(stack)
                return
            leadership = self._leadership = Leadership(
                LeadershipDeps(
                    settings=deps.settings,
                    api_client=api,
                    journal=journal,
                    queue=self._require_queue(),
                    handler=self._handler(reconciler),
                    enqueue_in_flight=lambda: self._enqueue_in_flight(journal, reconciler),
                    cached_keys=self._views_keys,
                    tracer=tracer,
                )
            )
            await leadership.start()
            # the queue drains before the Lease is released
            stack.push_async_callback(leadership.stop, deps.shutdown_timeout)
            stack.push_async_callback(self._watches.stop)  # runs before the drain
            await self._run_started(stack)

    async def _run_started(self, stack: contextlib.AsyncExitStack) -> None:
        """The watchdog and the gauges, then ready until stopped."""
        if self._watchdog is not None:
            period = watchdog_period(self._deps.settings.stuck_deadlines)
            watchdog = asyncio.create_task(self._watchdog.run(period), name="watchdog")
            stack.push_async_callback(_cancel, watchdog)
        gauges = asyncio.create_task(self._update_gauges(), name="engine-gauges")
        stack.push_async_callback(_cancel, gauges)
        self.ready.set()
        await self._stopping.wait()
        log.info("stopping: watches, then in-flight reconciles, then the journal")

    def _kind_served(self, api: Any) -> KindServed:
        """The probe that the API server serves the operator's kind."""
        kind = self._deps.operator.resource.kind_ref
        resources = KubeResources(api)

        async def probe() -> bool:
            return await kind_served(resources, kind, seconds=self._timing.timeout)

        return KindServed(probe, self._timing, kind.describe())

    def _sharded_journal(self, api: Any, journal: Journal) -> ShardFencedJournal:
        """The coordinator of this replica's shards, and the journal fenced by them."""
        settings = self._deps.settings
        coordinator = self._sharding = ShardCoordinator(
            ShardingConfig(
                count=settings.shards,
                prefix=settings.shard_lease_prefix,
                namespace=settings.lease_namespace,
                identity=default_identity(),
                lease_duration=settings.lease_duration_seconds,
                renew_deadline=settings.lease_renew_deadline_seconds,
                retry_period=settings.lease_retry_period_seconds,
                drain_seconds=self._deps.shutdown_timeout,
            ),
            api_client=api,
            metrics=ShardMetrics(self.metrics.registry),
        )
        return ShardFencedJournal(
            journal, shard_of=coordinator.shard_of, fence_of=coordinator.fence_of
        )

    def _require_fenced(self, journal: Journal) -> ShardFencedJournal:
        inner = journal.inner if isinstance(journal, MeteredJournal) else journal
        if not isinstance(inner, ShardFencedJournal):  # pragma: no cover - assembled so
            raise RuntimeError("the sharded journal is not assembled")
        return inner

    def _sqlite_journal(self) -> Path | None:
        """The SQLite journal file the engine opened itself, or None."""
        deps = self._deps
        if deps.journal is not None:
            return None
        if deps.journal_path is not None:
            return deps.journal_path
        return journal_file(deps.settings)

    def _timeline_journal(self) -> Path | None:
        """The SQLite journal whose timeline the health port serves (setting
        `health_timeline`), or None."""
        deps = self._deps
        if not deps.settings.health_timeline:
            return None
        return deps.journal_path or deps.settings.state_dir / JOURNAL_FILE

    # -- composition (the one place that builds the object graph) -------------------------

    def _build(
        self, api: Any, journal: Journal, tracer: trace.Tracer
    ) -> tuple[Reconciler, Observer | ShardedObserver]:
        """Build the parts for the operator on `api` and `journal` (nothing starts)."""
        deps, settings = self._deps, self._deps.settings
        operator = deps.operator
        queue = self._queue = WorkQueue(
            backoff=KeyedBackoff(
                base=settings.backoff_base_seconds,
                cap=settings.backoff_cap_seconds,
                rng=random.Random(),
            ),
            retry_bucket=TokenBucket(qps=settings.qps, burst=settings.burst),
            max_concurrent=settings.max_concurrent_reconciles,
            accepts=self._sharding.owns_key if self._sharding is not None else None,
        )
        writer = self._writer = KubeWriter(
            api, retry_after_cap=settings.retry_after_cap_seconds, clock=deps.clock
        )
        objects, ledger, inbox = PrimaryView(), ChildLedger(), Inbox()
        self._objects, self._ledger = objects, ledger
        events = EventRecorder(writer, enabled=deps.record_events)
        history = HistoryWarnings(
            limit=settings.history_warn_records, objects=objects, events=events,
            clock=deps.clock, metrics=self.metrics,
        )  # fmt: skip
        streams = StreamWriter(
            journal,
            ledger=ledger,
            code_version=operator.handler_version,
            history=history,
            clock=deps.clock,
        )
        observations = self._observations = ObservationLog(streams)
        runner = EffectRunner(
            RunnerDeps(
                journal=journal,
                streams=streams,
                clock=deps.clock,
                backoff=BackoffPolicy(max_attempts=settings.max_effect_attempts),
                timeout=settings.effect_timeout_seconds,
                term=lambda: journal.term,
                tracer=SpanTracer(tracer),
                may_act=self._may_act,
            )
        )
        waits = DependencyWaits(
            operator=operator,
            objects=objects,
            conditions=self._conditions,
            inbox=inbox,
            enqueue=queue.add,
            policy=DeadlockPolicy(settings.deadlock_policy),
            poll_seconds=settings.dependency_poll_seconds,
        )
        reconciler = Reconciler(
            operator=operator,
            streams=streams,
            cluster=writer,
            runner=runner,
            objects=objects,
            ledger=ledger,
            observations=observations,
            inbox=inbox,
            events=events,
            conditions=self._conditions,
            views=self._views,
            clock=deps.clock,
            waits=waits,
            tracer=tracer,
            metrics=self.metrics,
            policy=DecidePolicy(resync_after=settings.resync_seconds),
            may_act=self._may_act,
        )
        self._watchdog = Watchdog(
            operator=operator,
            streams=streams,
            objects=objects,
            conditions=self._conditions,
            running=self._running,
            inbox=inbox,
            enqueue=queue.add,
            clock=deps.clock,
            deadlines=settings.stuck_deadlines,
            policy=HealingPolicy(
                enabled=settings.healing_enabled,
                max_heals_without_progress=settings.max_heals_without_progress,
            ),
            may_act=self._may_act,
        )
        observer = Observer(
            ObserverDeps(
                operator=operator,
                view=objects,
                ledger=ledger,
                log=observations,
                enqueue=waits.notify,
                on_observed=self._noted,
                tracer=tracer,
            )
        )
        if self._sharding is not None:
            return reconciler, ShardedObserver(
                observer, view=objects, owns_key=self._sharding.owns_key
            )
        return reconciler, observer

    # -- connections -----------------------------------------------------------------------

    async def _connect(self) -> Any:
        settings = self._deps.settings
        if settings.in_cluster:
            return await connect_in_cluster()
        path = settings.kubeconfig or Path.home() / ".kube" / "config"
        return await connect_kubeconfig(path)

    async def _open_journal(self) -> Journal:
        deps = self._deps
        return await open_engine_journal(
            deps.settings,
            deps.operator,
            clock=deps.clock,
            path=deps.journal_path,
            on_quarantine=self._note_quarantine,
        )

    def _note_quarantine(self, what: str) -> None:
        self._quarantined = what
        self.metrics.count_journal_quarantined()

    async def _report_quarantine(self) -> None:
        """Post the Warning Event of a quarantine (best effort: the log line and the
        metric stand when the Event cannot be written)."""
        if self._quarantined is None or self._writer is None:
            return
        resource = self._deps.operator.resource
        definition = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {
                "name": f"{resource.plural}.{resource.group}",
                "namespace": self._deps.settings.lease_namespace,
            },
        }
        stamp = self._deps.clock.now().strftime("%Y%m%d%H%M%S")
        try:
            await self._writer.record_event(
                definition,
                name=f"engine-journal-quarantined.{stamp}",
                reason="JournalQuarantined",
                message=f"journal {self._quarantined}; started a fresh journal",
                warning=True,
                now=self._deps.clock.now(),
            )
        except (RetryableError, PermanentError) as failed:
            log.warning("the JournalQuarantined Event was not written: %s", failed)

    def _noted(self, key: str, obj: Mapping[str, Any], event: str) -> None:
        self._views.note(key, obj, event=event, at=self._deps.clock.now())

    def _require_objects(self) -> PrimaryView:
        if self._objects is None:  # pragma: no cover - assembled before use
            raise RuntimeError("the controller is not assembled")
        return self._objects

    def _require_observations(self) -> ObservationLog:
        if self._observations is None:  # pragma: no cover - assembled before use
            raise RuntimeError("the controller is not assembled")
        return self._observations

    def _require_queue(self) -> WorkQueue:
        if self._queue is None:  # pragma: no cover - assembled before use
            raise RuntimeError("the controller is not assembled")
        return self._queue

    def _handler(self, reconciler: Reconciler) -> Any:
        timeout = self._deps.settings.reconcile_timeout_seconds
        running = self._running

        async def handle(key: str) -> Outcome:
            if self._watches.relisting:
                # the API server was restored from a backup: no reconcile starts until
                # every kind has relisted (one started on a child's relist would repair
                # drift against the primaries' pre-restore state)
                return RequeueAfter(RELIST_HOLD_SECONDS)
            try:
                async with running.guard(key, timeout):
                    return await reconciler.reconcile(key)
            except TimeoutError:
                return running.outcome_after_timeout(key, timeout)

        return handle

    def _may_act(self) -> bool:
        if self._sharding is not None:
            return self._sharding.may_act()
        return self._leadership is None or self._leadership.may_act()

    def _objects_keys(self) -> list[str]:
        """Every key in the primary watch's cache (all shards')."""
        return list(self._objects.keys()) if self._objects is not None else []

    def _views_keys(self) -> list[str]:
        return [f"{v.namespace}/{v.name}" for v in self._views.snapshot()]

    def _count_restart(self, kind: Kind, reason: Any) -> None:
        self.metrics.count_watch_restart(kind.kind, str(reason))
        if reason in _SERVER_RESTORED:
            # the API server may have gone back (restored from a backup): the versions its
            # watches delivered before may be handed out again, so neither view orders by
            # them now; every kind relists, and no reconcile starts until all have
            # (`_handler`)
            for view in (self._objects, self._ledger):
                if view is not None:
                    view.server_went_back()
            self._watches.relist()

    def _lagged(self, seconds: float) -> None:
        self.metrics.observe_loop_lag(seconds)

    # -- watches ---------------------------------------------------------------------------

    async def _scan_journal(self) -> None:
        """Before the first list: learn every settled stream's last observation and the
        streams in flight from a SQLite journal in one read (`start_scan`), so an object
        listed unchanged since it was last journaled appends nothing and folds nothing,
        and the first reconciles are the in-flight ones. Other journals learn both as
        each stream is first folded."""
        path = self._sqlite_journal()
        if path is None or self._observations is None or not path.exists():
            return
        resource = self._deps.operator.resource
        prefix = f"{resource.group}/{resource.kind}/"
        found = await self._early_scan(path)
        begun = "begun before the controller" if found is not None else "after the open"
        if found is None:
            found = await asyncio.to_thread(scan, path, prefix)
        seeded = [record for record in found.observed if record.stream.startswith(prefix)]
        for record in seeded:
            self._observations.seed(record.stream, [record])
        self._in_flight_at_start = found.in_flight
        self._observed_at_start = found.observed
        log.info(
            "journal scanned at start (%s): %d streams with a last observation, %d in flight",
            begun,
            len(seeded),
            len(found.in_flight),
        )

    async def _early_scan(self, path: Path) -> StartScan | None:
        """The early scan's answer when it read `path` as the controller opened it (the
        same last record); None when there was none, it failed (the controller's own
        open has judged the journal since) or the journal moved on."""
        early = self._deps.early_scan
        if early is None or early.path != path or self._opened_head is None:
            return None
        try:
            found = await asyncio.wrap_future(early.result)
        except Exception as failure:  # the scan that follows reports what is wrong
            log.info("the early start-up scan failed (%s); scanning again", failure)
            return None
        if found.head != self._opened_head:
            log.info("the journal changed after the early start-up scan; scanning again")
            return None
        return found

    async def _observe_missed(
        self,
        journal: Journal,
        reconciler: Reconciler,
        observer: Observer | ShardedObserver,
        stack: contextlib.AsyncExitStack,
    ) -> None:
        """Once the primary's first list is complete: the live streams it lacks are
        observed as deleted (`missed_deletes`), from the start scan's last observations
        and in-flight streams, else from the journal's streams."""
        resource = self._deps.operator.resource
        prefix = f"{resource.group}/{resource.kind}/"
        scanned, self._observed_at_start = self._observed_at_start, None
        streams: list[tuple[str, Record | None]]
        if scanned is not None:
            streams = [(record.stream, record) for record in scanned]
            streams += [(s, None) for s in self._in_flight_at_start or () if s.startswith(prefix)]
        else:
            streams = [(s, None) for s in await journal.streams() if s.startswith(prefix)]
        primary = self._watches.watchers[0]  # the primary kind's watcher comes first
        deps = MissedDeps(
            operator=self._deps.operator,
            kind=primary.kind,
            cache=primary.cache,
            sink=observer.primary,
            view=self._require_objects(),
            namespaces=self._deps.settings.namespaces,
            state_of=reconciler.streams.current,
            forget_state=reconciler.streams.forget,
            records_of=journal.read_stream,
            forget_last=self._require_observations().forget,
        )
        replaced = await observe_missed(deps, streams)
        if replaced:  # each new uid is handed on once its name's old uid is finalized
            task = asyncio.create_task(deliver_replacements(deps, replaced), name="replaced")
            stack.push_async_callback(_cancel, task)

    async def _enqueue_in_flight(
        self,
        journal: Journal,
        reconciler: Reconciler,
        accepts: Callable[[str], bool] | None = None,
    ) -> None:
        """Streams with an effect started and no outcome go first (restart recovery);
        with `accepts`, only the streams of the keys it accepts (a shard's).

        A SQLite journal answers with one query (`OfflineReader.open_runs`), so the
        workers start without folding every stream first; other journals fold each."""
        resource = self._deps.operator.resource
        prefix = f"{resource.group}/{resource.kind}/"
        queue = self._require_queue()
        path = self._sqlite_journal()
        if path is not None:
            streams, self._in_flight_at_start = self._in_flight_at_start, None
            if streams is None:
                streams = tuple(await asyncio.to_thread(open_runs, path))
            for stream in streams:
                if not stream.startswith(prefix):
                    continue
                key = StreamId.parse(stream).ref.key
                if accepts is None or accepts(key):
                    queue.add(key, first=True)
            return
        states = reconciler.streams
        for stream in await journal.streams():
            if not stream.startswith(prefix):
                continue
            key = StreamId.parse(stream).ref.key
            if accepts is not None and not accepts(key):
                continue
            state = await states.current(stream)
            if state.state == DELETED:
                states.forget(stream)
                continue
            if state.pending_effects:
                queue.add(key, first=True)

    # -- shutdown, signals, health, gauges -------------------------------------------------

    def _install_signals(self, stack: contextlib.AsyncExitStack) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, self._stopping.set)
            except (NotImplementedError, RuntimeError, ValueError):
                return  # not the main thread, or no signal support
            stack.callback(loop.remove_signal_handler, signum)

    def _health(self) -> HealthDependencies:
        def watches_alive() -> bool:
            return all(not task.done() for task in self._watches.tasks)

        def synced() -> bool:
            return self.ready.is_set() and all(w.synced.is_set() for w in self._watches.watchers)

        def elector_alive() -> bool:
            if self._sharding is not None:
                return self._sharding.alive()
            return self._leadership is None or self._leadership.alive()

        def api_reachable() -> bool:
            return self._reach is None or self._reach.reachable()

        def leading() -> bool:
            return self._leadership is not None and self._leadership.leading()

        # readiness: the engine can safely act now (a standby is not ready: it does not act)
        readiness = [
            Check("caches-synced", synced),
            Check("journal", lambda: self._commits.ok),
            Check("api-server", api_reachable),
            Check("resource", lambda: self._served is None or self._served.ok),
        ]
        if self._deps.settings.leader_election:
            readiness.append(Check("leader", leading))
        return HealthDependencies(
            registry=self.metrics.registry,
            liveness=(
                Check("event-loop", self._loop_lag.healthy),
                Check("watches", watches_alive),
                Check("leader-election", elector_alive),
            ),
            readiness=tuple(readiness),
        )

    async def _update_gauges(self) -> None:
        queue = self._require_queue()
        while True:
            self.metrics.set_queue(depth=queue.depth, oldest_age_s=queue.oldest_age())
            self.metrics.set_resources_per_state(self._views.counts())
            self.metrics.set_stuck(self._conditions.count(STUCK))
            self.metrics.set_deadlocked(self._conditions.count(DEADLOCKED))
            if self._metered is not None:
                self._metered.record_size()
            await asyncio.sleep(1.0)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _check_redaction(journal: Journal, secret_fields: tuple[str, ...]) -> None:
    """A journal opened by the caller must redact the operator's secret fields (R16).

    Errors: `ValueError` naming the fields the journal would store in clear.
    """
    redacted = set(getattr(journal, "redacted_paths", ()))
    missing = [field for field in secret_fields if field not in redacted]
    if missing:
        raise ValueError(
            f"the journal given to the Controller does not redact {', '.join(missing)}: "
            "open it with redact= the operator's secret_fields, or let the Controller open it"
        )


async def open_engine_journal(
    settings: Settings,
    operator: Operator,
    *,
    clock: Clock,
    path: Path | None = None,
    on_quarantine: Callable[[str], None] | None = None,
) -> Journal:
    """The journal an engine for `operator` opens: `path`, else `settings.journal_url`,
    else `<state_dir>/journal.db`, redacting the operator's secret fields (the caller
    closes it). A corrupt SQLite journal is quarantined (its files renamed aside, a
    fresh one opened, `on_quarantine` told what and where) unless `journal_corrupt` is
    `refuse`. Errors: the journal's opening errors."""
    url = settings.journal_url
    location: str | Path
    if path is not None or not is_postgres(url):
        location = path or (sqlite_path(url) if url else settings.state_dir / JOURNAL_FILE)
        await asyncio.to_thread(location.parent.mkdir, parents=True, exist_ok=True)
    else:
        location = url
    redact = tuple(operator.secret_fields) + tuple(settings.redact_fields)

    async def opened() -> Journal:
        return await open_journal(
            location, clock=clock, synchronous=settings.journal_synchronous, redact=redact
        )

    try:
        return await opened()
    except (CorruptJournal, NotAJournal) as error:
        if (
            settings.journal_corrupt != "quarantine"
            or not isinstance(location, Path)
            or not quarantinable(error, location)
        ):
            raise
        moved = await asyncio.to_thread(quarantine, location, clock.now())
        log.error(
            "journal quarantined: %s; its files were renamed to %s; starting a fresh "
            "journal and rebuilding from cluster state",
            error,
            ", ".join(p.name for p in moved),
        )
        if on_quarantine is not None:
            on_quarantine(f"{error} (kept as {moved[0].name})")
        return await opened()
