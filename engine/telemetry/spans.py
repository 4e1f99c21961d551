"""The reconcile and effect spans, and the ids the journal and log lines carry.

Uses only the `opentelemetry.trace` API: every attribute goes through the allowlist and
the `Redactor`; exception messages are never recorded as such (they may hold secrets),
only their class name and a redacted status description.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags

from engine.telemetry.redaction import NO_SECRETS, AttributeValue, Redactor

_HEX = frozenset("0123456789abcdef")


class SpanIds(NamedTuple):
    """A span's ids as lowercase hex: 32 characters of trace id, 16 of span id."""

    trace_id: str
    span_id: str

    @classmethod
    def parse(cls, trace_id: str | None, span_id: str | None) -> SpanIds | None:
        """The ids stored on a journal record, or None when absent or malformed."""
        if trace_id is None or span_id is None:
            return None
        if len(trace_id) != 32 or len(span_id) != 16 or not set(trace_id + span_id) <= _HEX:
            return None
        if int(trace_id, 16) == 0 or int(span_id, 16) == 0:
            return None
        return cls(trace_id, span_id)


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """Which resource a reconcile is about (the attributes of its span)."""

    namespace: str
    kind: str
    name: str
    uid: str
    generation: int
    group: str = ""


def ids_of(span: trace.Span) -> SpanIds | None:
    """`span`'s ids, or None when it is not a valid (recording or propagated) span."""
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return SpanIds(trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id))


def current_ids() -> SpanIds | None:
    """The current span's ids (for `NewEvent.trace_id/span_id` and log lines), or None."""
    return ids_of(trace.get_current_span())


class ReconcileSpan:
    """The span of one reconcile, as the reconciler records what it decided."""

    def __init__(self, span: trace.Span, redactor: Redactor) -> None:
        self._span = span
        self._redactor = redactor
        self._from_state: str | None = None

    @property
    def ids(self) -> SpanIds | None:
        """This span's ids (None when tracing is disabled)."""
        return ids_of(self._span)

    def record_transition(self, *, from_state: str, to_state: str, trigger: str) -> None:
        """A state machine transition this reconcile took.

        One reconcile may take several (Pending → Provisioning, then Provisioning →
        Ready): `fsm.from` keeps the state the reconcile started in, `fsm.to` and
        `fsm.trigger` the last transition's; each transition is also a `transition` event.
        """
        if self._from_state is None:
            self._from_state = from_state
        if not self._span.is_recording():
            return
        step = {"fsm.from": from_state, "fsm.to": to_state, "fsm.trigger": trigger}
        self._span.add_event("transition", self._redactor.attributes(step))
        self.set_attributes({**step, "fsm.from": self._from_state})

    def record_retry(self, *, delay_s: float, attempt: int, error_type: str = "") -> None:
        """A retry scheduled after `delay_s` seconds, as a `retry_scheduled` span event.

        The reconcile that runs the retry should pass this span's `ids` (stored on the
        `RetryScheduled` journal record) to `reconcile_span(follows=...)`.
        """
        if not self._span.is_recording():
            return
        attributes: dict[str, AttributeValue] = {"retry.delay_s": delay_s, "retry.attempt": attempt}
        if error_type:
            attributes["error.type"] = error_type
        self._span.add_event("retry_scheduled", self._redactor.attributes(attributes))

    def set_outcome(self, outcome: str, *, error: str | None = None) -> None:
        """How the reconcile ended (`converged`, `requeued`, `failed`, ...); `error`, when
        given, marks the span as failed with a redacted description."""
        if not self._span.is_recording():
            return
        self.set_attributes({"reconcile.outcome": outcome})
        if error is not None:
            self._span.set_status(Status(StatusCode.ERROR, self._redactor.text(error)))

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Set allowlisted attributes (errors: `UnknownSpanAttribute`); values redacted."""
        self._span.set_attributes(self._redactor.attributes(attributes))


class EffectSpan:
    """The span of one effect attempt."""

    def __init__(self, span: trace.Span, redactor: Redactor) -> None:
        self._span = span
        self._redactor = redactor
        self.outcome: str | None = None
        """The outcome set with `set_outcome`, None until then."""

    @property
    def ids(self) -> SpanIds | None:
        """This span's ids (None when tracing is disabled)."""
        return ids_of(self._span)

    def set_outcome(
        self, outcome: str, *, error_type: str = "", retryable: bool | None = None
    ) -> None:
        """The attempt's outcome (`succeeded`, `failed`, `replayed`, ...)."""
        self.outcome = outcome
        if not self._span.is_recording():
            return
        attributes: dict[str, AttributeValue] = {"effect.outcome": outcome}
        if error_type:
            attributes["error.type"] = error_type
            self._span.set_status(Status(StatusCode.ERROR, error_type))
        if retryable is not None:
            attributes["effect.retryable"] = retryable
        self._span.set_attributes(self._redactor.attributes(attributes))


@contextmanager
def reconcile_span(
    tracer: trace.Tracer,
    resource: ResourceRef,
    *,
    follows: Sequence[SpanIds] = (),
    redactor: Redactor = NO_SECRETS,
) -> Iterator[ReconcileSpan]:
    """Run a reconcile inside its own span, the root of a new trace, made current.

    `follows` are the spans this reconcile continues (the span that scheduled its retry,
    the previous reconcile of the resource): each becomes a link with `link.reason`
    `follows`, which is how Jaeger joins one resource's reconciles across restarts.
    Malformed or all-zero ids are skipped (a journal written with tracing off has none).
    An exception escaping the block marks the span failed with the exception's class
    name only, and is re-raised.
    """
    links = [
        Link(
            SpanContext(
                int(ids.trace_id, 16),
                int(ids.span_id, 16),
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            ),
            {"link.reason": "follows"},
        )
        for ids in _well_formed(follows)
    ]
    attributes = redactor.attributes(
        {
            "k8s.namespace.name": resource.namespace,
            "k8s.resource.group": resource.group,
            "k8s.resource.kind": resource.kind,
            "k8s.resource.name": resource.name,
            "k8s.resource.uid": resource.uid,
            "k8s.resource.generation": resource.generation,
        }
    )
    with _span(
        tracer, f"reconcile {resource.kind}", attributes, links=links, context=Context()
    ) as span:
        yield ReconcileSpan(span, redactor)


@contextmanager
def effect_span(
    tracer: trace.Tracer,
    *,
    effect: str,
    idempotency_key: str,
    attempt: int,
    redactor: Redactor = NO_SECRETS,
) -> Iterator[EffectSpan]:
    """Run one effect attempt inside a child span of the current (reconcile) span.

    An exception escaping the block sets `error.type` to the exception's class name
    (never its message), and `effect.outcome=error` unless `set_outcome` was called
    (a failure the caller classified); it is re-raised.
    """
    attributes = redactor.attributes(
        {
            "effect.name": effect,
            "effect.idempotency_key": idempotency_key,
            "effect.attempt": attempt,
        }
    )
    with _span(
        tracer, f"effect {effect}", attributes, links=(), context=None, mark_errors=False
    ) as span:
        attempt_span = EffectSpan(span, redactor)
        try:
            yield attempt_span
        except BaseException as error:
            if attempt_span.outcome is None:
                span.set_attributes({"effect.outcome": "error", "error.type": _type_name(error)})
                span.set_status(Status(StatusCode.ERROR, _type_name(error)))
            raise


@contextmanager
def _span(
    tracer: trace.Tracer,
    name: str,
    attributes: Mapping[str, AttributeValue],
    *,
    links: Sequence[Link],
    context: Context | None,
    mark_errors: bool = True,
) -> Iterator[trace.Span]:
    with tracer.start_as_current_span(
        name,
        context=context,
        kind=trace.SpanKind.INTERNAL,
        attributes=attributes,
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as error:
            if mark_errors:
                span.set_attribute("error.type", _type_name(error))
                span.set_status(Status(StatusCode.ERROR, _type_name(error)))
            raise


def _well_formed(follows: Sequence[SpanIds]) -> Iterator[SpanIds]:
    for ids in follows:
        parsed = SpanIds.parse(ids.trace_id, ids.span_id)
        if parsed is not None:
            yield parsed


def _type_name(error: BaseException) -> str:
    return f"{type(error).__module__}.{type(error).__qualname__}"
