"""OpenTelemetry tracer setup, reconcile and effect spans, Prometheus metrics, log lines.

Public API (see docs/telemetry.md): `configure_tracing` → `TracingHandle`,
`reconcile_span` / `effect_span`, `current_ids`, `EngineMetrics`, `configure_logging`.
Only `engine.telemetry.setup` imports the OpenTelemetry SDK; the rest uses the API.
Names load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "ALLOWED_ATTRIBUTES": "engine.telemetry.redaction",
    "EffectSpan": "engine.telemetry.spans",
    "EngineMetrics": "engine.telemetry.metrics",
    "NO_SECRETS": "engine.telemetry.redaction",
    "REDACTED": "engine.telemetry.redaction",
    "ReconcileSpan": "engine.telemetry.spans",
    "Redactor": "engine.telemetry.redaction",
    "ResourceRef": "engine.telemetry.spans",
    "SpanIds": "engine.telemetry.spans",
    "TelemetryConfigError": "engine.telemetry.otel_config",
    "TracingHandle": "engine.telemetry.setup",
    "TracingSettings": "engine.telemetry.otel_config",
    "UnknownSpanAttribute": "engine.telemetry.redaction",
    "configure_logging": "engine.telemetry.logging",
    "configure_tracing": "engine.telemetry.setup",
    "current_ids": "engine.telemetry.spans",
    "effect_span": "engine.telemetry.spans",
    "escape_text": "engine.telemetry.logging",
    "reconcile_span": "engine.telemetry.spans",
}
"""Each public name → its module, imported on first use: a module that needs only the
redactor or the spans does not load the SDK and the OTLP exporter."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine.telemetry' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


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
