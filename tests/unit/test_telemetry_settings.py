"""Tracing settings come from the standard OTEL_* variables, with clear errors."""

from __future__ import annotations

import pytest

from engine.telemetry import TelemetryConfigError, TracingSettings
from engine.telemetry.otel_config import (
    DEFAULT_EXPORT_TIMEOUT_S,
    DEFAULT_MAX_QUEUE_SIZE,
    tracing_settings,
)


def settings(**env: str) -> TracingSettings:
    return tracing_settings(env, service_name_default="engine")


def test_defaults_export_otlp_http_to_localhost_with_a_large_queue_and_short_timeout() -> None:
    parsed = settings()
    assert parsed.enabled is True
    assert parsed.exporting is True
    assert parsed.protocol == "http/protobuf"
    assert parsed.endpoint == "http://localhost:4318/v1/traces"
    assert parsed.service_name == "engine"
    assert parsed.sampler == "parentbased_always_on"
    assert parsed.max_queue_size == DEFAULT_MAX_QUEUE_SIZE > 2048
    assert parsed.export_timeout_s == DEFAULT_EXPORT_TIMEOUT_S <= 1.0


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318/"},
            "http://jaeger:4318/v1/traces",
            id="base-gets-signal-path",
        ),
        pytest.param(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector/custom",
            },
            "https://collector/custom",
            id="traces-endpoint-used-as-is",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "http://localhost:4317", id="grpc-default"
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://j:4317"},
            "http://j:4317",
            id="grpc-no-path",
        ),
    ],
)
def test_endpoint_follows_the_otlp_rules(env: dict[str, str], endpoint: str) -> None:
    assert tracing_settings(env, service_name_default="engine").endpoint == endpoint


@pytest.mark.parametrize(
    ("env", "named"),
    [
        pytest.param({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "jaeger:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        pytest.param({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        pytest.param(
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        pytest.param({"OTEL_SDK_DISABLED": "yes"}, "OTEL_SDK_DISABLED"),
        pytest.param({"OTEL_BSP_MAX_QUEUE_SIZE": "0"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
        pytest.param({"OTEL_BSP_SCHEDULE_DELAY": "soon"}, "OTEL_BSP_SCHEDULE_DELAY"),
        pytest.param({"OTEL_EXPORTER_OTLP_TIMEOUT": "-1"}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        pytest.param({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS"),
        pytest.param({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(TelemetryConfigError, match=named) as raised:
        tracing_settings(env, service_name_default="engine")
    assert "\n" not in str(raised.value)


def test_service_name_prefers_otel_service_name_then_resource_attributes() -> None:
    both = settings(OTEL_SERVICE_NAME="a", OTEL_RESOURCE_ATTRIBUTES="service.name=b,team=x%20y")
    assert both.service_name == "a"
    assert dict(both.resource_attributes) == {"service.name": "b", "team": "x y"}
    assert settings(OTEL_RESOURCE_ATTRIBUTES="service.name=b").service_name == "b"


def test_sdk_disabled_and_exporter_none_are_read() -> None:
    assert settings(OTEL_SDK_DISABLED="TRUE").enabled is False
    assert settings(OTEL_SDK_DISABLED="false").enabled is True
    assert settings(OTEL_TRACES_EXPORTER="none").exporting is False


def test_batch_size_never_exceeds_the_queue_and_ratio_is_read_for_ratio_samplers() -> None:
    parsed = settings(
        OTEL_BSP_MAX_QUEUE_SIZE="8",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.25",
        OTEL_EXPORTER_OTLP_TRACES_HEADERS="authorization=Bearer%20t",
    )
    assert (parsed.max_queue_size, parsed.max_export_batch_size) == (8, 8)
    assert parsed.sampler_ratio == 0.25
    assert dict(parsed.headers) == {"authorization": "Bearer t"}
