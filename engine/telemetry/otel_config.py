"""Tracing settings read from the standard `OTEL_*` environment variables (pure parsing).

Only the variables listed in docs/telemetry.md are read, from the mapping the caller
passes (never `os.environ` directly), so a test or a second engine in one process can
configure tracing without touching the process environment.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

ExportProtocol = Literal["http/protobuf", "grpc"]
SamplerName = Literal[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
]

SAMPLERS: tuple[SamplerName, ...] = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)

DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"

# Sized for `engine bench reconcile`: the SDK's 2,048-span queue overflows there, while
# 65,536 ended spans (a few hundred bytes each) stay well under 100 MiB.
DEFAULT_MAX_QUEUE_SIZE = 65_536
DEFAULT_MAX_EXPORT_BATCH_SIZE = 2_048
DEFAULT_SCHEDULE_DELAY_MS = 500
# Short, so an unreachable collector costs little per batch and never delays shutdown.
DEFAULT_EXPORT_TIMEOUT_S = 1.0


class TelemetryConfigError(ValueError):
    """An `OTEL_*` variable has a value the engine cannot use; the message says which."""


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """What `configure_tracing` builds from the environment.

    `enabled` is False when `OTEL_SDK_DISABLED=true`; `exporting` is False when
    `OTEL_TRACES_EXPORTER=none` (spans are then not recorded, as nothing would read
    them, but each still gets its ids, so journal records and log lines carry trace ids;
    the sampler applies only when spans are exported).
    """

    enabled: bool
    exporting: bool
    service_name: str
    resource_attributes: tuple[tuple[str, str], ...]
    protocol: ExportProtocol
    endpoint: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    """The exporter's headers (credentials, often): kept out of the settings' repr."""
    export_timeout_s: float
    sampler: SamplerName
    sampler_ratio: float
    max_queue_size: int
    max_export_batch_size: int
    schedule_delay_ms: int


def tracing_settings(env: Mapping[str, str], *, service_name_default: str) -> TracingSettings:
    """Parse the tracing settings from `env`.

    Errors: `TelemetryConfigError` naming the variable, its value and what it accepts.
    """
    enabled = not _flag(env, "OTEL_SDK_DISABLED")
    exporter = _get(env, "OTEL_TRACES_EXPORTER") or "otlp"
    if exporter not in ("otlp", "none"):
        raise TelemetryConfigError(
            f"OTEL_TRACES_EXPORTER={exporter!r} is not supported: use 'otlp' or 'none'"
        )
    protocol = _protocol(env)
    resource = _key_values(env, "OTEL_RESOURCE_ATTRIBUTES")
    service_name = (
        _get(env, "OTEL_SERVICE_NAME") or dict(resource).get("service.name") or service_name_default
    )
    sampler = (_get(env, "OTEL_TRACES_SAMPLER") or "parentbased_always_on").lower()
    if sampler not in SAMPLERS:
        raise TelemetryConfigError(
            f"OTEL_TRACES_SAMPLER={sampler!r} is not supported: use one of {', '.join(SAMPLERS)}"
        )
    max_queue_size = _positive_int(env, "OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE_SIZE)
    batch_size = _positive_int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_MAX_EXPORT_BATCH_SIZE)
    return TracingSettings(
        enabled=enabled,
        exporting=exporter == "otlp",
        service_name=service_name,
        resource_attributes=resource,
        protocol=protocol,
        endpoint=_endpoint(env, protocol),
        headers=_key_values(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        or _key_values(env, "OTEL_EXPORTER_OTLP_HEADERS"),
        export_timeout_s=_timeout(env),
        sampler=sampler,
        sampler_ratio=_ratio(env) if sampler.endswith("traceidratio") else 1.0,
        max_queue_size=max_queue_size,
        max_export_batch_size=min(batch_size, max_queue_size),
        schedule_delay_ms=_positive_int(env, "OTEL_BSP_SCHEDULE_DELAY", DEFAULT_SCHEDULE_DELAY_MS),
    )


def _get(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = _get(env, name).lower()
    if value in ("", "false"):
        return False
    if value == "true":
        return True
    raise TelemetryConfigError(f"{name}={value!r} is not a boolean: use 'true' or 'false'")


def _protocol(env: Mapping[str, str]) -> ExportProtocol:
    value = _get(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _get(
        env, "OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    if value in ("", "http/protobuf"):
        return "http/protobuf"
    if value == "grpc":
        return "grpc"
    raise TelemetryConfigError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL={value!r} is not supported: "
        "use 'http/protobuf' (the default) or 'grpc'"
    )


def _endpoint(env: Mapping[str, str], protocol: ExportProtocol) -> str:
    """The traces endpoint: the signal-specific variable as is, else the base + `/v1/traces`."""
    specific = _get(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base = _get(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
    name = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" if specific else "OTEL_EXPORTER_OTLP_ENDPOINT"
    for value in (specific, base):
        parsed = urllib.parse.urlsplit(value)
        if value and (parsed.scheme not in ("http", "https") or not parsed.hostname):
            raise TelemetryConfigError(
                f"{name}={value!r} is not an http(s) URL: use e.g. http://jaeger:4318"
            )
    if protocol == "grpc":
        return specific or base or DEFAULT_GRPC_ENDPOINT
    if specific:
        return specific
    return f"{(base or DEFAULT_HTTP_ENDPOINT).rstrip('/')}/v1/traces"


def _timeout(env: Mapping[str, str]) -> float:
    for name in ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        value = _get(env, name)
        if value:
            # Seconds, as the installed Python OTLP exporters read it.
            try:
                seconds = float(value)
            except ValueError:
                seconds = -1.0
            if not seconds > 0:
                raise TelemetryConfigError(
                    f"{name}={value!r} is not a positive number of seconds"
                ) from None
            return seconds
    return DEFAULT_EXPORT_TIMEOUT_S


def _ratio(env: Mapping[str, str]) -> float:
    value = _get(env, "OTEL_TRACES_SAMPLER_ARG") or "1.0"
    try:
        ratio = float(value)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise TelemetryConfigError(
            f"OTEL_TRACES_SAMPLER_ARG={value!r} is not a ratio: use a number from 0 to 1"
        )
    return ratio


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _get(env, name)
    if not value:
        return default
    if not value.isdigit() or int(value) == 0:
        raise TelemetryConfigError(f"{name}={value!r} is not a positive integer")
    return int(value)


def _key_values(env: Mapping[str, str], name: str) -> tuple[tuple[str, str], ...]:
    """`k1=v1,k2=v2` with percent-encoded values (the W3C baggage-like OTEL format)."""
    value = _get(env, name)
    pairs: list[tuple[str, str]] = []
    for number, item in enumerate(filter(None, (part.strip() for part in value.split(","))), 1):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            # the entry itself is not quoted: a header's value is often a credential
            raise TelemetryConfigError(
                f"{name} has an entry (number {number}) that is not key=value: "
                "use comma-separated key=value pairs"
            )
        pairs.append((key.strip(), urllib.parse.unquote(raw.strip())))
    return tuple(pairs)
