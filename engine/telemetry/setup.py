"""Build the OpenTelemetry tracer from `TracingSettings`; the SDK's only home in the engine.

Ended spans go through a bounded, counting batch processor to an OTLP exporter (HTTP by
default, gRPC from the optional `grpc` extra). Every span the engine loses (queue full,
ended after shutdown, export failed) is counted and reported to an optional callback.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from engine import __version__
from engine.telemetry.ids_tracer import IdsOnlyTracer
from engine.telemetry.otel_config import TelemetryConfigError, TracingSettings, tracing_settings

SpansLost = Callable[[str, int], None]
"""Called with (reason, count) whenever spans are lost: `queue_full`, `shutdown`,
`export_failed`. Called from the thread that ends the span or from the export thread."""

TRACER_NAME = "engine"


class _LossCounts:
    """Thread-safe counts of spans admitted, handed to the exporter, and lost."""

    def __init__(self, on_lost: SpansLost | None) -> None:
        self.lock = threading.Lock()
        self.admitted = 0
        self.handed = 0
        self.dropped = 0
        self.failed = 0
        self._on_lost = on_lost

    def lost(self, reason: str, count: int) -> None:
        if self._on_lost is not None:
            self._on_lost(reason, count)


class _CountingExporter(SpanExporter):
    """Delegates to the OTLP exporter, counts what it hands over and what fails.

    After `abandon()` (a shutdown that ran out of time) every export fails at once, and
    the inner exporter's retry wait is interrupted.
    """

    def __init__(self, inner: SpanExporter, counts: _LossCounts) -> None:
        self._inner = inner
        self._counts = counts
        self._abandoned = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._counts.lock:
            self._counts.handed += len(spans)
        result = SpanExportResult.FAILURE
        if not self._abandoned.is_set():
            try:
                result = self._inner.export(spans)
            except Exception:  # an exporter bug must not kill the export thread
                result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            with self._counts.lock:
                self._counts.failed += len(spans)
            self._counts.lost("export_failed", len(spans))
        return result

    def abandon(self) -> None:
        if not self._abandoned.is_set():
            self._abandoned.set()
            self._inner.shutdown()

    def shutdown(self) -> None:
        if not self._abandoned.is_set():
            self._abandoned.set()
            self._inner.shutdown()


class _BoundedBatchProcessor(SpanProcessor):
    """The SDK's batch processor behind an admission bound that counts every drop.

    The SDK's queue silently evicts its oldest span when full and does not say so in
    any public API. Here a span is admitted only while fewer than `max_queue_size`
    admitted spans have not yet been handed to the exporter; since the SDK queue never
    holds more than that, it never evicts, and every loss is a refusal counted here.
    """

    def __init__(
        self, exporter: _CountingExporter, settings: TracingSettings, counts: _LossCounts
    ) -> None:
        self._limit = settings.max_queue_size
        self._counts = counts
        self._closed = False
        self._batch = BatchSpanProcessor(
            exporter,
            max_queue_size=settings.max_queue_size,
            schedule_delay_millis=settings.schedule_delay_ms,
            max_export_batch_size=settings.max_export_batch_size,
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._batch.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if not (span.context and span.context.trace_flags.sampled):
            return
        counts = self._counts
        with counts.lock:
            reason = ""
            if self._closed:
                reason = "shutdown"
            elif counts.admitted - counts.handed >= self._limit:
                reason = "queue_full"
            if reason:
                counts.dropped += 1
            else:
                counts.admitted += 1
        if reason:
            counts.lost(reason, 1)
            return
        self._batch.on_end(span)

    def shutdown(self) -> None:
        with self._counts.lock:
            self._closed = True
        self._batch.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._batch.force_flush(timeout_millis)


@dataclass(frozen=True)
class TracingHandle:
    """The configured tracer and the means to stop it.

    `tracer` is what `reconcile_span` and `effect_span` take. When tracing is disabled
    (`OTEL_SDK_DISABLED=true`) it is a no-op tracer: spans are not recorded and
    `current_ids()` inside them answers None. When nothing is exported
    (`OTEL_TRACES_EXPORTER=none`) it is an `IdsOnlyTracer`: spans have ids, and record
    nothing.
    """

    tracer: trace.Tracer
    settings: TracingSettings
    _provider: TracerProvider | None = field(default=None, repr=False)
    _exporter: _CountingExporter | None = field(default=None, repr=False)
    _counts: _LossCounts = field(default_factory=lambda: _LossCounts(None), repr=False)

    @property
    def dropped_spans(self) -> int:
        """Spans refused because the queue was full or tracing was shut down."""
        with self._counts.lock:
            return self._counts.dropped

    @property
    def failed_spans(self) -> int:
        """Spans handed to the exporter whose export failed (collector down, timeout)."""
        with self._counts.lock:
            return self._counts.failed

    def shutdown(self, timeout_s: float = 2.0) -> bool:
        """Flush queued spans and stop; return within `timeout_s` whatever the collector does.

        Returns True when everything queued was handed to the exporter in time, False
        when the deadline passed (the rest is abandoned and counted as failed). Calling
        it again is harmless.
        """
        if self._provider is None:
            return True
        worker = threading.Thread(
            target=self._provider.shutdown, name="engine-tracing-shutdown", daemon=True
        )
        started = time.monotonic()
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive() and self._exporter is not None:
            self._exporter.abandon()
            worker.join(max(0.0, min(0.05, timeout_s - (time.monotonic() - started))))
        return not worker.is_alive()


def configure_tracing(
    *,
    service_name_default: str,
    env: Mapping[str, str],
    on_spans_lost: SpansLost | None = None,
) -> TracingHandle:
    """Build the engine's tracer from the standard `OTEL_*` variables in `env`.

    Guarantees: nothing global is changed (no global tracer provider is set, no atexit
    hook): call `shutdown()` on the handle when the engine stops. Export runs on a
    background thread and never blocks the caller; spans ended faster than they can be
    exported beyond the queue bound are dropped and counted, never buffered without limit.
    Errors: `TelemetryConfigError` for a bad variable, or for `grpc` without the extra.
    """
    settings = tracing_settings(env, service_name_default=service_name_default)
    if not settings.enabled:
        return TracingHandle(tracer=trace.NoOpTracer(), settings=settings)
    if not settings.exporting:
        # nothing would read a recorded span: ids only (records and log lines carry them)
        return TracingHandle(tracer=IdsOnlyTracer(), settings=settings)
    provider = TracerProvider(
        sampler=_sampler(settings), resource=_resource(settings), shutdown_on_exit=False
    )
    counts = _LossCounts(on_spans_lost)
    exporter = _CountingExporter(_otlp_exporter(settings), counts)
    provider.add_span_processor(_BoundedBatchProcessor(exporter, settings, counts))
    return TracingHandle(
        tracer=provider.get_tracer(TRACER_NAME, __version__),
        settings=settings,
        _provider=provider,
        _exporter=exporter,
        _counts=counts,
    )


def _resource(settings: TracingSettings) -> Resource:
    # Built directly, not with Resource.create(), which would read os.environ itself.
    attributes: dict[str, str] = {"service.version": __version__}
    attributes.update(settings.resource_attributes)
    attributes["service.name"] = settings.service_name
    return Resource(attributes)


def _sampler(settings: TracingSettings) -> sampling.Sampler:
    ratio = settings.sampler_ratio
    samplers: dict[str, Callable[[], sampling.Sampler]] = {
        "always_on": lambda: sampling.ALWAYS_ON,
        "always_off": lambda: sampling.ALWAYS_OFF,
        "traceidratio": lambda: sampling.TraceIdRatioBased(ratio),
        "parentbased_always_on": lambda: sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": lambda: sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": lambda: sampling.ParentBasedTraceIdRatio(ratio),
    }
    return samplers[settings.sampler]()


def _otlp_exporter(settings: TracingSettings) -> SpanExporter:
    headers = dict(settings.headers)
    if settings.protocol == "http/protobuf":
        # imported only to export: with OTEL_TRACES_EXPORTER=none it is never loaded
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=settings.endpoint, headers=headers, timeout=settings.export_timeout_s
        )
    try:
        grpc: Any = importlib.import_module("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
    except ImportError:
        raise TelemetryConfigError(
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the gRPC exporter, which is not installed: "
            "install the engine's 'grpc' extra (pip install 'engine[grpc]') or use http/protobuf"
        ) from None
    exporter: SpanExporter = grpc.OTLPSpanExporter(
        endpoint=settings.endpoint,
        headers=headers,
        timeout=settings.export_timeout_s,
        insecure=settings.endpoint.startswith("http://"),
    )
    return exporter
