"""The tracer used when no span is exported: every span gets fresh ids, records nothing.

With no exporter nothing would ever read a recorded span, but the journal's records and
the log lines still carry the ids of the span they were written in (that is how a
reconcile links to the one before it, across restarts). `IdsOnlyTracer` gives exactly
that: a span's trace id is its parent's (a new random one for a root span), its span id
a new random one, the span is made current like any other, and it is never recording,
so no attribute, event or status is kept. It costs a fraction of a sampled-out SDK span.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextvars import Token

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.util.types import Attributes

_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)


def _random_bits(bits: int) -> int:
    while True:  # zero is the invalid id
        value = random.getrandbits(bits)
        if value:
            return value


class IdsOnlyTracer(trace.Tracer):
    """A `Tracer` whose spans carry valid, propagated ids and record nothing."""

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        trace_id = parent.trace_id if parent.is_valid else _random_bits(128)
        return NonRecordingSpan(
            SpanContext(trace_id, _random_bits(64), is_remote=False, trace_flags=_UNSAMPLED)
        )

    def start_as_current_span(  # type: ignore[override]  # a plain context manager
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> _Current:
        return _Current(self.start_span(name, context))


class _Current:
    """Makes a span the current one for the duration of a `with` block."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._token: Token[otel_context.Context] | None = None

    def __enter__(self) -> trace.Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, *_: object) -> None:
        if self._token is not None:
            otel_context.detach(self._token)


def records_nothing(tracer: trace.Tracer) -> bool:
    """Whether `tracer`'s spans are never recorded (no-op, or ids only): then nothing
    needs redacting for them."""
    return isinstance(tracer, (trace.NoOpTracer, IdsOnlyTracer))
