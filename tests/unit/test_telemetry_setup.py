"""configure_tracing builds a tracer without touching global state, and fails clearly."""

from __future__ import annotations

import importlib.util

import pytest
from opentelemetry import trace

from engine.telemetry import (
    ResourceRef,
    TelemetryConfigError,
    configure_tracing,
    current_ids,
    effect_span,
    reconcile_span,
)
from engine.telemetry.ids_tracer import records_nothing

REF = ResourceRef(namespace="ns", kind="Widget", name="w", uid="u", generation=1)
GRPC_INSTALLED = importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None


def test_exporter_none_still_records_spans_so_journal_records_get_ids() -> None:
    handle = configure_tracing(service_name_default="engine", env={"OTEL_TRACES_EXPORTER": "none"})
    with reconcile_span(handle.tracer, REF) as reconcile:
        ids = current_ids()
        assert ids is not None
        assert ids == reconcile.ids
        assert len(ids.trace_id) == 32
        assert len(ids.span_id) == 16
        assert ids.trace_id == ids.trace_id.lower()
    assert handle.shutdown() is True
    assert handle.shutdown() is True  # a second call is harmless


def test_configuring_tracing_leaves_the_global_tracer_provider_alone() -> None:
    before = trace.get_tracer_provider()
    handle = configure_tracing(service_name_default="engine", env={"OTEL_TRACES_EXPORTER": "none"})
    assert trace.get_tracer_provider() is before
    handle.shutdown()


def test_always_off_sampler_exports_nothing_and_counts_nothing_as_dropped() -> None:
    handle = configure_tracing(
        service_name_default="engine",
        env={"OTEL_TRACES_SAMPLER": "always_off", "OTEL_BSP_MAX_QUEUE_SIZE": "1"},
    )
    for _ in range(5):
        with reconcile_span(handle.tracer, REF) as reconcile:
            span_ids = reconcile.ids
            assert span_ids is not None  # unsampled spans still propagate ids
    assert handle.shutdown() is True
    assert handle.dropped_spans == 0


def test_bad_settings_raise_a_config_error() -> None:
    with pytest.raises(TelemetryConfigError, match="OTEL_TRACES_SAMPLER"):
        configure_tracing(service_name_default="engine", env={"OTEL_TRACES_SAMPLER": "never"})


@pytest.mark.skipif(GRPC_INSTALLED, reason="the grpc extra is installed here")
def test_grpc_without_the_extra_names_the_extra_to_install() -> None:
    with pytest.raises(TelemetryConfigError, match=r"engine\[grpc\]"):
        configure_tracing(
            service_name_default="engine", env={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
        )


@pytest.mark.skipif(not GRPC_INSTALLED, reason="the grpc extra is not installed here")
def test_grpc_with_the_extra_builds_a_tracer() -> None:
    handle = configure_tracing(
        service_name_default="engine", env={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    )
    assert handle.settings.protocol == "grpc"
    handle.shutdown(timeout_s=0.5)


def test_spans_that_nothing_exports_carry_ids_records_nothing_and_nest() -> None:
    handle = configure_tracing(service_name_default="engine", env={"OTEL_TRACES_EXPORTER": "none"})
    assert records_nothing(handle.tracer)
    with reconcile_span(handle.tracer, REF) as first:
        with effect_span(handle.tracer, effect="provision", idempotency_key="k", attempt=1):
            child = current_ids()
        assert current_ids() == first.ids
    with reconcile_span(handle.tracer, REF) as second:
        assert not trace.get_current_span().is_recording()
    assert current_ids() is None  # nothing current after the blocks
    assert first.ids is not None
    assert second.ids is not None
    assert child is not None
    assert child.trace_id == first.ids.trace_id  # a child continues its parent's trace
    assert child.span_id != first.ids.span_id
    assert second.ids.trace_id != first.ids.trace_id  # a reconcile is a new trace
