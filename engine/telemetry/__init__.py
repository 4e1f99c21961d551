"""OpenTelemetry tracer and meter setup, span helpers, Prometheus metrics."""
