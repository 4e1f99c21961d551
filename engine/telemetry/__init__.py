"""OpenTelemetry tracer setup, reconcile and effect spans, Prometheus metrics, log lines.

Public API (see docs/telemetry.md): `configure_tracing` → `TracingHandle`,
`reconcile_span` / `effect_span`, `current_ids`, `EngineMetrics`, `configure_logging`.
Only `engine.telemetry.setup` imports the OpenTelemetry SDK; the rest uses the API.
"""

from engine.telemetry.logging import configure_logging, escape_text
from engine.telemetry.metrics import EngineMetrics
from engine.telemetry.otel_config import TelemetryConfigError, TracingSettings
from engine.telemetry.redaction import (
    ALLOWED_ATTRIBUTES,
    NO_SECRETS,
    REDACTED,
    Redactor,
    UnknownSpanAttribute,
)
from engine.telemetry.setup import TracingHandle, configure_tracing
from engine.telemetry.spans import (
    EffectSpan,
    ReconcileSpan,
    ResourceRef,
    SpanIds,
    current_ids,
    effect_span,
    reconcile_span,
)

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "NO_SECRETS",
    "REDACTED",
    "EffectSpan",
    "EngineMetrics",
    "ReconcileSpan",
    "Redactor",
    "ResourceRef",
    "SpanIds",
    "TelemetryConfigError",
    "TracingHandle",
    "TracingSettings",
    "UnknownSpanAttribute",
    "configure_logging",
    "configure_tracing",
    "current_ids",
    "effect_span",
    "escape_text",
    "reconcile_span",
]
