"""Short root spans around the journal writes the engine makes outside any reconcile
(an observation from a watch event, a leader election, a watchdog's healing), so that
every journal record carries the ids of a span. Uses only the `opentelemetry.trace` API;
every attribute goes through the allowlist and the `Redactor`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode

from engine.journal.record import NewEvent
from engine.telemetry.redaction import NO_SECRETS, AttributeValue, Redactor
from engine.telemetry.spans import ResourceRef, current_ids


def stamped(event: NewEvent) -> NewEvent:
    """`event` carrying the current span's ids (unchanged outside a span, or when
    tracing is off)."""
    ids = current_ids()
    if ids is None:
        return event
    return replace(event, trace_id=ids.trace_id, span_id=ids.span_id)


def resource_attributes(resource: ResourceRef) -> dict[str, AttributeValue]:
    """The `k8s.*` attributes that name `resource` (as on a reconcile span)."""
    return {
        "k8s.namespace.name": resource.namespace,
        "k8s.resource.group": resource.group,
        "k8s.resource.kind": resource.kind,
        "k8s.resource.name": resource.name,
        "k8s.resource.uid": resource.uid,
        "k8s.resource.generation": resource.generation,
    }


@contextmanager
def operation_span(
    tracer: trace.Tracer,
    name: str,
    attributes: Mapping[str, AttributeValue],
    *,
    redactor: Redactor = NO_SECRETS,
) -> Iterator[trace.Span]:
    """Run one engine operation inside its own span, the root of a new trace, made
    current (so `current_ids()` gives the ids journal appends inside it carry).

    `attributes` must be allowlisted (errors: `UnknownSpanAttribute`); values are
    redacted. With the no-op tracer this costs one no-op span and `current_ids()` stays
    None. An exception escaping the block marks the span failed with the exception's
    class name only (never its message), and is re-raised.
    """
    with tracer.start_as_current_span(
        name,
        context=Context(),
        kind=trace.SpanKind.INTERNAL,
        attributes=redactor.attributes(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as error:
            type_name = f"{type(error).__module__}.{type(error).__qualname__}"
            span.set_attribute("error.type", type_name)
            span.set_status(Status(StatusCode.ERROR, type_name))
            raise


@contextmanager
def observe_span(
    tracer: trace.Tracer,
    resource: ResourceRef,
    *,
    watch_event: str,
    redactor: Redactor = NO_SECRETS,
) -> Iterator[trace.Span]:
    """The `observe <Kind>` span around journaling what one watch event showed:
    the resource's `k8s.*` attributes and `watch.event_type` (added, modified, deleted)."""
    attributes = {**resource_attributes(resource), "watch.event_type": watch_event}
    with operation_span(tracer, f"observe {resource.kind}", attributes, redactor=redactor) as span:
        yield span
