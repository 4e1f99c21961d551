"""The engine's Prometheus metrics, held on one registry per engine (no global state).

The runtime, the journal store's caller, the watchers and the supervisor report through
the small methods of `EngineMetrics`; `/metrics` serves `render()`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The Content-Type of `render()`'s output (Prometheus text format)."""

RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOURNAL_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class EngineMetrics:
    """Every metric the engine exports, registered on `registry` (a fresh one by default).

    Guarantees: two instances never share state, so tests and a second engine in one
    process do not interfere. Every method is thread-safe (prometheus-client locks) and
    does no I/O. Metric names are listed in docs/telemetry.md.
    """

    __slots__ = (
        "_deadlocked",
        "_history_longest",
        "_history_warnings",
        "_journal_append",
        "_journal_bytes",
        "_journal_records",
        "_journals_quarantined",
        "_longest",
        "_loop_lag",
        "_queue_age",
        "_queue_depth",
        "_reconcile_seconds",
        "_reconciles",
        "_resources",
        "_retries",
        "_spans_dropped",
        "_states_lock",
        "_states_seen",
        "_stuck",
        "_watch_restarts",
        "_webhook_decisions",
        "_webhook_seconds",
        "registry",
    )

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self._reconcile_seconds = Histogram(
            "engine_reconcile_duration_seconds",
            "Time from taking a key off the work queue to finishing its reconcile.",
            ("kind", "outcome"),
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self._reconciles = Counter(
            "engine_reconciles", "Reconciles finished, by outcome.", ("kind", "outcome"), registry=r
        )
        self._queue_depth = Gauge(
            "engine_workqueue_depth", "Keys waiting in the work queue.", registry=r
        )
        self._queue_age = Gauge(
            "engine_workqueue_oldest_item_age_seconds",
            "How long the oldest waiting key has waited.",
            registry=r,
        )
        self._retries = Counter(
            "engine_retries", "Effect retries scheduled.", ("kind", "effect"), registry=r
        )
        self._resources = Gauge(
            "engine_resources", "Resources per state-machine state.", ("state",), registry=r
        )
        self._stuck = Gauge(
            "engine_stuck_resources", "Resources the watchdog finds stuck.", registry=r
        )
        self._deadlocked = Gauge(
            "engine_deadlocked_resources", "Resources on a waits-for cycle.", registry=r
        )
        self._journal_append = Histogram(
            "engine_journal_append_duration_seconds",
            "Time for one journal append to commit.",
            buckets=JOURNAL_BUCKETS,
            registry=r,
        )
        self._journal_bytes = Gauge("engine_journal_size_bytes", "Journal file size.", registry=r)
        self._journal_records = Gauge(
            "engine_journal_records", "Records in the journal.", registry=r
        )
        self._journals_quarantined = Counter(
            "engine_journal_quarantined",
            "Corrupt journals renamed aside at start (the engine began a fresh one).",
            registry=r,
        )
        self._history_warnings = Counter(
            "engine_stream_history_warnings",
            "Streams whose history passed the history_warn_records threshold.",
            ["kind"],
            registry=r,
        )
        self._longest = 0
        self._history_longest = Gauge(
            "engine_stream_history_records_max",
            "Records of the longest stream history warned about.",
            registry=r,
        )
        self._watch_restarts = Counter(
            "engine_watch_restarts",
            "Watch streams restarted (410 relist, error, timeout).",
            ("kind", "reason"),
            registry=r,
        )
        self._spans_dropped = Counter(
            "engine_spans_dropped",
            "Spans lost before reaching the collector (queue_full, shutdown, export_failed).",
            ("reason",),
            registry=r,
        )
        self._loop_lag = Histogram(
            "engine_event_loop_lag_seconds",
            "Event-loop lags above the warning threshold (a heartbeat woke this late).",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self._webhook_decisions = Counter(
            "engine_webhook_requests",
            "Webhook requests answered, by handler (validate, mutate, convert) and result "
            "(allowed, rejected, error, converted, failed, bad_request).",
            ("handler", "result"),
            registry=r,
        )
        self._webhook_seconds = Histogram(
            "engine_webhook_duration_seconds",
            "Time from a webhook request's arrival to its answer (journal append included).",
            ("handler",),
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self._states_seen: set[str] = set()
        self._states_lock = threading.Lock()

    def observe_reconcile(self, kind: str, outcome: str, seconds: float) -> None:
        """One finished reconcile of a resource of `kind`."""
        self._reconcile_seconds.labels(kind, outcome).observe(seconds)
        self._reconciles.labels(kind, outcome).inc()

    def set_queue(self, *, depth: int, oldest_age_s: float) -> None:
        """The work queue's current depth and the age of its oldest key (0 when empty)."""
        self._queue_depth.set(depth)
        self._queue_age.set(oldest_age_s if depth else 0.0)

    def count_retry(self, kind: str, effect: str) -> None:
        """One retry scheduled for `effect` of a resource of `kind`."""
        self._retries.labels(kind, effect).inc()

    def set_resources_per_state(self, counts: Mapping[str, int]) -> None:
        """The number of resources in each state; a state seen before and absent now is 0."""
        with self._states_lock:
            self._states_seen.update(counts)
            for state in self._states_seen:
                self._resources.labels(state).set(counts.get(state, 0))

    def set_stuck(self, count: int) -> None:
        """Resources the watchdog currently finds stuck."""
        self._stuck.set(count)

    def set_deadlocked(self, count: int) -> None:
        """Resources currently on a waits-for cycle."""
        self._deadlocked.set(count)

    def observe_loop_lag(self, seconds: float) -> None:
        """One event-loop lag above the warning threshold."""
        self._loop_lag.observe(seconds)

    def observe_journal_append(self, seconds: float) -> None:
        """One journal append, from call to commit."""
        self._journal_append.observe(seconds)

    def set_journal_size(self, *, size_bytes: int, records: int) -> None:
        """The journal's file size and record count."""
        self._journal_bytes.set(size_bytes)
        self._journal_records.set(records)

    def count_journal_quarantined(self) -> None:
        """A corrupt journal was renamed aside and a fresh one started."""
        self._journals_quarantined.inc()

    def count_history_warning(self, kind: str, records: int) -> None:
        """One more stream of `kind` past the history threshold, now `records` long."""
        self._history_warnings.labels(kind=kind).inc()
        self._longest = max(self._longest, records)
        self._history_longest.set(self._longest)

    def count_watch_restart(self, kind: str, reason: str) -> None:
        """One watch stream of `kind` restarted, for `reason` (`gone`, `error`, `timeout`)."""
        self._watch_restarts.labels(kind, reason).inc()

    def count_spans_dropped(self, reason: str, count: int) -> None:
        """Spans lost; shaped to be `configure_tracing(on_spans_lost=...)` directly."""
        self._spans_dropped.labels(reason).inc(count)

    def observe_webhook(self, handler: str, result: str, seconds: float) -> None:
        """One webhook request answered by `handler` with `result`."""
        self._webhook_decisions.labels(handler, result).inc()
        self._webhook_seconds.labels(handler).observe(seconds)

    def render(self) -> bytes:
        """The registry in Prometheus text format (serve with `CONTENT_TYPE`)."""
        data: bytes = generate_latest(self.registry)
        return data
