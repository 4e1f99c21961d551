"""Tracing end to end: configured from OTEL_* variables, exported over real OTLP/HTTP."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from engine.telemetry import (
    REDACTED,
    EngineMetrics,
    Redactor,
    ResourceRef,
    SpanIds,
    configure_tracing,
    current_ids,
    effect_span,
    reconcile_span,
)
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

WIDGET = ResourceRef(
    namespace="shop", kind="Widget", name="blue", uid="4f1c-77", generation=3, group="demo.io"
)
SECRET_OBJECT = {"spec": {"size": 2, "password": "hunter2-secret"}}


def by_name(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.name == name]


def test_reconcile_span_tree_reaches_the_collector_with_parents_attributes_and_links() -> None:
    redactor = Redactor.from_object(SECRET_OBJECT, ["spec.password"])
    with OtlpReceiver() as receiver:
        handle = configure_tracing(
            service_name_default="engine",
            env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url, "OTEL_SERVICE_NAME": "shop-op"},
        )
        with reconcile_span(handle.tracer, WIDGET, redactor=redactor) as first:
            first.record_transition(from_state="Pending", to_state="Provisioning", trigger="x")
            with effect_span(
                handle.tracer, effect="CreateDeployment", idempotency_key="4f1c-77:3:cd", attempt=1
            ) as effect:
                assert current_ids() == effect.ids
                effect.set_outcome("failed", error_type="TimeoutError", retryable=True)
            first.record_retry(delay_s=0.25, attempt=1, error_type="TimeoutError")
            first.set_outcome("retry", error="login hunter2-secret refused")
            scheduled_by = first.ids
        assert scheduled_by is not None
        with reconcile_span(
            handle.tracer, WIDGET, follows=[scheduled_by], redactor=redactor
        ) as second:
            second.record_transition(from_state="Provisioning", to_state="Ready", trigger="y")
            with effect_span(
                handle.tracer, effect="CreateDeployment", idempotency_key="4f1c-77:3:cd", attempt=2
            ) as effect:
                effect.set_outcome("succeeded")
            second.set_outcome("converged")
            second_ids = second.ids
        assert handle.shutdown() is True
        spans = receiver.wait_for_spans(4)

    assert len(spans) == 4
    reconciles = by_name(spans, "reconcile Widget")
    effects = by_name(spans, "effect CreateDeployment")
    assert len(reconciles) == 2
    assert len(effects) == 2
    first_span = next(s for s in reconciles if s.span_id == scheduled_by.span_id)
    second_span = next(s for s in reconciles if s is not first_span)
    assert second_ids == SpanIds(second_span.trace_id, second_span.span_id)
    # one trace per reconcile; each effect attempt is a child of its reconcile
    assert first_span.trace_id != second_span.trace_id
    assert first_span.parent_span_id == ""
    assert second_span.parent_span_id == ""
    for attempt, parent in ((1, first_span), (2, second_span)):
        child = next(s for s in effects if s.attributes["effect.attempt"] == attempt)
        assert (child.trace_id, child.parent_span_id) == (parent.trace_id, parent.span_id)
    assert first_span.attributes == {
        "k8s.namespace.name": "shop",
        "k8s.resource.group": "demo.io",
        "k8s.resource.kind": "Widget",
        "k8s.resource.name": "blue",
        "k8s.resource.uid": "4f1c-77",
        "k8s.resource.generation": 3,
        "fsm.from": "Pending",
        "fsm.to": "Provisioning",
        "fsm.trigger": "x",
        "reconcile.outcome": "retry",
    }
    failed_effect = next(s for s in effects if s.attributes["effect.attempt"] == 1)
    assert failed_effect.attributes["effect.outcome"] == "failed"
    assert failed_effect.attributes["effect.retryable"] is True
    assert failed_effect.attributes["effect.idempotency_key"] == "4f1c-77:3:cd"
    [transition, retry] = first_span.events
    assert transition.name == "transition"
    assert transition.attributes == {
        "fsm.from": "Pending",
        "fsm.to": "Provisioning",
        "fsm.trigger": "x",
    }
    assert retry.name == "retry_scheduled"
    assert retry.attributes == {
        "retry.delay_s": 0.25,
        "retry.attempt": 1,
        "error.type": "TimeoutError",
    }
    [link] = second_span.links
    assert (link.trace_id, link.span_id) == (first_span.trace_id, first_span.span_id)
    assert link.attributes == {"link.reason": "follows"}
    assert first_span.status_message == f"login {REDACTED} refused"
    assert first_span.resource["service.name"] == "shop-op"
    assert "hunter2" not in repr(spans)
    assert (handle.dropped_spans, handle.failed_spans) == (0, 0)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def silent_listener() -> Iterator[int]:
    """Accepts TCP connections (the kernel does) and never answers a request."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield server.getsockname()[1]


@pytest.mark.parametrize("collector", ["closed_port", "silent_listener"])
def test_shutdown_returns_within_two_seconds_when_the_collector_does_not_answer(
    collector: str,
) -> None:
    with silent_listener() as silent:
        port = silent if collector == "silent_listener" else closed_port()
        handle = configure_tracing(
            service_name_default="engine",
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                "OTEL_EXPORTER_OTLP_TIMEOUT": "30",
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "50",
            },
        )
        for number in range(500):
            with handle.tracer.start_as_current_span(f"work {number}"):
                pass
        started = time.monotonic()
        flushed = handle.shutdown(timeout_s=2.0)
        elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"shutdown took {elapsed:.2f} s"
    assert flushed is False
    assert handle.dropped_spans == 0


def test_a_disabled_sdk_records_and_exports_nothing_and_raises_nothing() -> None:
    with OtlpReceiver() as receiver:
        handle = configure_tracing(
            service_name_default="engine",
            env={"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url},
        )
        with reconcile_span(handle.tracer, WIDGET) as reconcile:
            with effect_span(handle.tracer, effect="e", idempotency_key="k", attempt=1) as effect:
                effect.set_outcome("succeeded")
                assert current_ids() is None
            reconcile.record_retry(delay_s=1.0, attempt=1)
            assert reconcile.ids is None
        assert handle.shutdown() is True
        time.sleep(0.2)
        assert receiver.requests == 0
    assert handle.settings.enabled is False


def test_spans_refused_by_a_full_queue_are_counted_and_reach_the_metric() -> None:
    metrics = EngineMetrics()
    total = 60
    with OtlpReceiver(response_delay_s=0.3) as receiver:
        handle = configure_tracing(
            service_name_default="engine",
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url,
                "OTEL_EXPORTER_OTLP_TIMEOUT": "5",
                "OTEL_BSP_MAX_QUEUE_SIZE": "4",
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2",
                "OTEL_BSP_SCHEDULE_DELAY": "10",
            },
            on_spans_lost=metrics.count_spans_dropped,
        )
        for number in range(total):
            with handle.tracer.start_as_current_span(f"work {number}"):
                pass
        assert handle.shutdown(timeout_s=10.0) is True
        received = len(receiver.spans)
    dropped = handle.dropped_spans
    assert dropped > 0
    assert handle.failed_spans == 0
    assert received + dropped == total
    rendered = metrics.render().decode()
    match = re.search(r'^engine_spans_dropped_total\{reason="queue_full"\} (\S+)$', rendered, re.M)
    assert match is not None
    assert float(match.group(1)) == dropped
