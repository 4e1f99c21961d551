"""Reconcile and effect spans: roots, children, allowlisted and redacted attributes, errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, Tracer

from engine.telemetry import (
    REDACTED,
    Redactor,
    ResourceRef,
    SpanIds,
    UnknownSpanAttribute,
    current_ids,
    effect_span,
    reconcile_span,
)

REF = ResourceRef(namespace="ns", kind="Widget", name="w", uid="u-1", generation=2)


class Boom(RuntimeError):
    pass


@pytest.fixture
def recorded() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def finished(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_a_reconcile_span_starts_a_new_trace_even_inside_another_span(
    recorded: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = recorded
    with tracer.start_as_current_span("watch loop") as outer, reconcile_span(tracer, REF):
        pass
    span = finished(exporter)["reconcile Widget"]
    assert span.parent is None
    assert span.context.trace_id != outer.get_span_context().trace_id


def test_an_escaping_exception_marks_the_effect_failed_by_class_only(
    recorded: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = recorded
    redactor = Redactor.from_object({"spec": {"token": "s3cr3t"}}, ["spec.token"])
    with (
        pytest.raises(Boom),
        reconcile_span(tracer, REF, redactor=redactor),
        effect_span(tracer, effect="Call", idempotency_key="u-1:2:Call", attempt=1),
    ):
        raise Boom("token s3cr3t rejected")
    spans = finished(exporter)
    effect = spans["effect Call"]
    assert effect.attributes is not None
    assert effect.attributes["effect.outcome"] == "error"
    assert effect.attributes["error.type"] == f"{__name__}.Boom"
    assert effect.status.status_code is StatusCode.ERROR
    assert effect.events == ()  # no exception event: its message could hold a secret
    assert "s3cr3t" not in repr([s.to_json() for s in spans.values()])
    assert effect.parent is not None
    assert effect.parent.span_id == spans["reconcile Widget"].context.span_id


def test_attribute_values_are_redacted_and_unknown_names_refused(
    recorded: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = recorded
    secret_ref = ResourceRef(namespace="ns", kind="Widget", name="pw-42", uid="u", generation=1)
    redactor = Redactor.from_object({"spec": {"password": "pw-42"}}, ["spec.password"])
    with reconcile_span(tracer, secret_ref, redactor=redactor) as reconcile:
        reconcile.set_outcome("failed", error="bad pw-42")
        with pytest.raises(UnknownSpanAttribute, match=r"spec\.password"):
            reconcile.set_attributes({"spec.password": "x"})
    span = finished(exporter)["reconcile Widget"]
    assert span.attributes is not None
    assert span.attributes["k8s.resource.name"] == REDACTED
    assert span.status.description == f"bad {REDACTED}"
    assert "spec.password" not in span.attributes


def test_current_ids_inside_an_effect_are_the_effect_span_and_none_outside(
    recorded: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, _ = recorded
    assert current_ids() is None
    with reconcile_span(tracer, REF) as reconcile:
        assert current_ids() == reconcile.ids
        with effect_span(tracer, effect="E", idempotency_key="k", attempt=1) as effect:
            assert current_ids() == effect.ids
            assert effect.ids is not None
            assert reconcile.ids is not None
            assert effect.ids.trace_id == reconcile.ids.trace_id
        assert current_ids() == reconcile.ids
    assert current_ids() is None


def test_follows_links_each_well_formed_earlier_span_with_its_reason(
    recorded: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = recorded
    earlier = SpanIds("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    malformed = SpanIds("0" * 32, "not-hex")
    with reconcile_span(tracer, REF, follows=[malformed, earlier]):
        pass
    [link] = finished(exporter)["reconcile Widget"].links
    assert f"{link.context.trace_id:032x}" == earlier.trace_id
    assert f"{link.context.span_id:016x}" == earlier.span_id
    assert link.attributes == {"link.reason": "follows"}


@pytest.mark.parametrize(
    ("trace_id", "span_id", "parsed"),
    [
        pytest.param("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", True, id="valid"),
        pytest.param(None, "b7ad6b7169203331", False, id="no-trace-id"),
        pytest.param("0af7651916cd43dd8448eb211c80319c", None, False, id="no-span-id"),
        pytest.param("0AF7651916CD43DD8448EB211C80319C", "b7ad6b7169203331", False, id="upper"),
        pytest.param("0af7651916cd43dd", "b7ad6b7169203331", False, id="short"),
        pytest.param("0" * 32, "b7ad6b7169203331", False, id="zero-trace"),
        pytest.param("0af7651916cd43dd8448eb211c80319c", "zzad6b7169203331", False, id="not-hex"),
    ],
)
def test_span_ids_parse_only_well_formed_journal_ids(
    trace_id: str | None, span_id: str | None, parsed: bool
) -> None:
    result = SpanIds.parse(trace_id, span_id)
    assert (result is not None) is parsed
    if parsed:
        assert result == (trace_id, span_id)
