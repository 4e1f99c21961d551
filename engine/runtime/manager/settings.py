"""Every setting of an engine run, in one frozen dataclass, and how they are loaded.

Sources, later wins: the defaults declared below → a TOML file (config/engine.toml shows
them all) → `ENGINE_<NAME>` environment variables → overrides (the CLI flags).
engine/runtime/manager/settings_docs.py renders that file and the docs table from these
declarations, so each default is written once.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

LogFormat = Literal["text", "json"]
Synchronous = Literal["NORMAL", "FULL"]
DeadlockPolicyName = Literal["report-and-hold", "fail-newest"]
CorruptPolicy = Literal["quarantine", "refuse"]
WebhookFailurePolicy = Literal["Fail", "Ignore"]
WebhookCertificates = Literal["self-signed", "cert-manager"]


class SettingsError(ValueError):
    """A bad setting: the message names the setting, its source and what is expected."""


def _about(meaning: str, *, bound: str = "") -> dict[str, str]:
    """A setting's field metadata: one line of meaning and, for numbers, a bound
    (">= 0", "> 0", ">= 1" or "port")."""
    return {"meaning": meaning, "bound": bound}


def _default_stuck_deadlines() -> Mapping[str, float]:
    return types.MappingProxyType({"Pending": 300.0, "Provisioning": 600.0, "Finalizing": 600.0})


@dataclass(frozen=True)
class Settings:
    """The settings of one engine run; see docs/runtime-parts.md for the table."""

    state_dir: Path = field(
        default=Path(".engine"), metadata=_about("directory for the journal and local state")
    )
    kubeconfig: Path | None = field(
        default=None, metadata=_about("kubeconfig file to use; empty: the default lookup")
    )
    in_cluster: bool = field(
        default=False, metadata=_about("use the pod's service account instead of a kubeconfig")
    )
    namespaces: tuple[str, ...] = field(
        default=(), metadata=_about("namespaces to watch; empty: all namespaces")
    )
    label_selector: str = field(
        default="", metadata=_about("only reconcile objects matching this label selector")
    )
    resync_seconds: float = field(
        default=300.0, metadata=_about("relist and re-queue every object this often", bound="> 0")
    )
    max_concurrent_reconciles: int = field(
        default=32, metadata=_about("keys reconciled at once", bound=">= 1")
    )
    qps: float = field(
        default=10.0,
        metadata=_about("global retry rate limit (token bucket refill per second)", bound="> 0"),
    )
    burst: int = field(
        default=100, metadata=_about("global retry rate limit (token bucket size)", bound=">= 1")
    )
    backoff_base_seconds: float = field(
        default=0.005, metadata=_about("first per-key retry delay ceiling", bound="> 0")
    )
    backoff_cap_seconds: float = field(
        default=300.0, metadata=_about("largest per-key retry delay", bound="> 0")
    )
    retry_after_cap_seconds: float = field(
        default=60.0,
        metadata=_about("longest wait a server's Retry-After is honoured for", bound="> 0"),
    )
    reconcile_timeout_seconds: float = field(
        default=60.0, metadata=_about("deadline for one reconcile", bound="> 0")
    )
    effect_timeout_seconds: float = field(
        default=30.0, metadata=_about("deadline for one effect attempt", bound="> 0")
    )
    max_effect_attempts: int = field(
        default=10, metadata=_about("attempts before an effect gives up", bound=">= 1")
    )
    health_host: str = field(
        default="0.0.0.0", metadata=_about("address of /healthz, /readyz and /metrics")
    )
    health_port: int = field(
        default=8081,
        metadata=_about("port of the health endpoints; 0: any free port", bound="port"),
    )
    readiness_probe_seconds: float = field(
        default=2.0,
        metadata=_about("how often readiness probes the journal and the API server", bound="> 0"),
    )
    api_unreachable_seconds: float = field(
        default=30.0,
        metadata=_about(
            "readiness drops once the API server has not answered for this long", bound="> 0"
        ),
    )
    health_timeline: bool = field(
        default=False,
        metadata=_about(
            "serve the journal's timeline page, read-only, at /timeline/ on the health port"
        ),
    )
    webhook_host: str = field(
        default="0.0.0.0", metadata=_about("address of the admission and conversion webhooks")
    )
    webhook_port: int = field(
        default=9443,
        metadata=_about("port of the webhooks (HTTPS); 0: any free port", bound="port"),
    )
    webhook_failure_policy: WebhookFailurePolicy = field(
        default="Fail",
        metadata=_about("what the API server does when a webhook errs or cannot be reached"),
    )
    webhook_timeout_seconds: int = field(
        default=10,
        metadata=_about(
            "the webhook configurations' timeoutSeconds (1 to 30); a handler gets 80 % of it",
            bound=">= 1",
        ),
    )
    webhook_certificates: WebhookCertificates = field(
        default="self-signed",
        metadata=_about(
            "self-signed: the engine's own CA, injected as caBundle; cert-manager: its "
            "Secret, mounted at webhook_cert_dir"
        ),
    )
    webhook_cert_dir: Path | None = field(
        default=None,
        metadata=_about("directory of the webhook certificates; empty: <state_dir>/webhook-certs"),
    )
    webhook_service: str = field(
        default="",
        metadata=_about(
            "namespace/name of the webhooks' Service; set (with self-signed): the engine "
            "applies its webhook configurations and CRD conversion, with its CA, at start"
        ),
    )
    webhook_cert_rotate_before_days: float = field(
        default=30.0,
        metadata=_about(
            "renew a webhook certificate this many days before it expires", bound="> 0"
        ),
    )
    journal_synchronous: Synchronous = field(
        default="FULL", metadata=_about("SQLite synchronous mode of the journal")
    )
    journal_url: str = field(
        default="",
        metadata=_about(
            "journal location: postgresql://… URL, sqlite:///path or a path; "
            "empty: <state_dir>/journal.db"
        ),
    )
    journal_corrupt: CorruptPolicy = field(
        default="quarantine",
        metadata=_about(
            "a corrupt SQLite journal at start: quarantine (rename it aside, start a fresh "
            "one, rebuild from cluster state) or refuse (exit)"
        ),
    )
    redact_fields: tuple[str, ...] = field(
        default=(), metadata=_about("dotted paths of secret fields, redacted")
    )
    log_format: LogFormat = field(default="text", metadata=_about("log line format"))
    watch_inactivity_seconds: float = field(
        default=60.0,
        metadata=_about("restart a watch that sent nothing for this long", bound="> 0"),
    )
    leader_election: bool = field(
        default=False, metadata=_about("take a Lease before reconciling (for replicas > 1)")
    )
    lease_name: str = field(default="engine-leader", metadata=_about("name of the leader Lease"))
    lease_namespace: str = field(
        default="default", metadata=_about("namespace of the leader Lease")
    )
    lease_duration_seconds: float = field(
        default=15.0, metadata=_about("how long a Lease is held", bound="> 0")
    )
    lease_renew_deadline_seconds: float = field(
        default=10.0,
        metadata=_about("the leader steps down if it cannot renew within this", bound="> 0"),
    )
    lease_retry_period_seconds: float = field(
        default=2.0, metadata=_about("interval between Lease attempts", bound="> 0")
    )
    shards: int = field(
        default=0,
        metadata=_about(
            "split the keys into this many shards held by active replicas "
            "(needs a postgresql:// journal_url); 0: off",
            bound=">= 0",
        ),
    )
    shard_lease_prefix: str = field(
        default="engine",
        metadata=_about("prefix of the member and shard Leases (in lease_namespace)"),
    )
    stuck_deadlines: Mapping[str, float] = field(
        default_factory=_default_stuck_deadlines,
        metadata=_about("seconds a resource may stay in a state before it is reported stuck"),
    )
    healing_enabled: bool = field(
        default=True,
        metadata=_about("re-drive stuck resources (off: only report them)"),
    )
    max_heals_without_progress: int = field(
        default=3,
        metadata=_about("re-drives of a stuck resource before it is moved to Failed", bound=">= 0"),
    )
    deadlock_policy: DeadlockPolicyName = field(
        default="report-and-hold",
        metadata=_about("on a waits-for cycle: report and hold, or fail its newest member"),
    )
    dependency_poll_seconds: float = field(
        default=5.0,
        metadata=_about(
            "how soon a provision waiting for another resource tries again", bound="> 0"
        ),
    )
    history_warn_records: int = field(
        default=10_240,
        metadata=_about(
            "a stream this many records long gets a Warning Event and counts in /metrics "
            "(0: never)",
            bound=">= 0",
        ),
    )
    loop_lag_warn_seconds: float = field(
        default=0.1,
        metadata=_about("event-loop lag that is logged, counted and traced", bound="> 0"),
    )
    loop_lag_unhealthy_seconds: float = field(
        default=10.0,
        metadata=_about("event-loop stall that fails /healthz", bound="> 0"),
    )

    def __post_init__(self) -> None:
        if self.backoff_base_seconds > self.backoff_cap_seconds:
            raise SettingsError(
                f"setting 'backoff_base_seconds' ({self.backoff_base_seconds}) must not exceed "
                f"'backoff_cap_seconds' ({self.backoff_cap_seconds})"
            )
        if self.lease_renew_deadline_seconds >= self.lease_duration_seconds:
            raise SettingsError(
                "setting 'lease_renew_deadline_seconds' must be below 'lease_duration_seconds'"
            )
        if self.webhook_timeout_seconds > 30:
            raise SettingsError(
                f"setting 'webhook_timeout_seconds' ({self.webhook_timeout_seconds}) must be "
                "from 1 to 30 (the API server's limit)"
            )
        if self.shards and self.leader_election:
            raise SettingsError(
                "settings 'shards' and 'leader_election' exclude each other: "
                "with shards every replica is active"
            )
        if self.shards and not self.journal_url.startswith(("postgresql://", "postgres://")):
            raise SettingsError(
                "setting 'shards' needs a shared journal: set 'journal_url' "
                "(ENGINE_JOURNAL_URL) to a postgresql:// URL"
            )
        if self.in_cluster and self.kubeconfig is not None:
            raise SettingsError("settings 'in_cluster' and 'kubeconfig' exclude each other")


FIELDS = {spec.name: spec for spec in dataclasses.fields(Settings)}  # in declaration order
_TYPES: dict[str, Any] = typing.get_type_hints(Settings)


def env_name(name: str) -> str:
    """The environment variable of setting `name`: `ENGINE_` plus the name in capitals."""
    return f"ENGINE_{name.upper()}"


def load_settings(
    *,
    config_path: Path | None = None,
    env: Mapping[str, str],
    overrides: Mapping[str, object],
) -> Settings:
    """Build the settings from the defaults, a TOML file, `ENGINE_*` variables and overrides.

    `overrides` holds typed values or strings (parsed like env values); a None value means
    "not given" (an unset CLI flag). Environment variables not naming a setting are ignored
    (other parts read their own, such as ENGINE_DEBUG).
    Errors: `SettingsError` for an unreadable or invalid TOML file, an unknown key in it or
    in `overrides`, or a value of the wrong type or range, naming setting and source.
    """
    values: dict[str, object] = {}
    if config_path is not None:
        for name, raw in _read_toml(config_path).items():
            values[name] = _coerce(name, raw, source=f"{config_path}", from_text=False)
    for name in FIELDS:
        variable = env_name(name)
        if variable in env:
            values[name] = _parse_text(name, env[variable], source=f"environment {variable}")
    for name, raw in overrides.items():
        if name not in FIELDS:
            raise SettingsError(f"unknown setting {name!r} (from the command line)")
        if raw is not None:
            values[name] = _coerce(name, raw, source="the command line", from_text=True)
    return Settings(**values)  # type: ignore[arg-type]


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as error:
        raise SettingsError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"config file {path} is not valid TOML: {error}") from None
    unknown = sorted(set(document) - set(FIELDS))
    if unknown:
        raise SettingsError(
            f"unknown setting {unknown[0]!r} in {path}; known settings: {', '.join(FIELDS)}"
        )
    return document


def expected(name: str) -> str:
    """What setting `name` accepts, in words (for error messages and the docs)."""
    kind = _TYPES[name]
    if kind is bool:
        return "true or false"
    if kind is int:
        return "an integer" + _range(name)
    if kind is float:
        return "a number" + _range(name)
    if typing.get_origin(kind) is Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(kind))
    if kind == tuple[str, ...]:
        return "a list of strings (comma-separated in the environment)"
    if kind == Mapping[str, float]:
        return "a table of state = seconds (STATE=SECONDS,... in the environment)"
    if kind == Path | None:
        return "a path, or empty for none"
    return "a path" if kind is Path else "a string"


def _range(name: str) -> str:
    bound: str = FIELDS[name].metadata["bound"]
    if bound == "port":
        return " from 0 to 65535"
    return f" {bound}" if bound else ""


def _in_range(name: str, number: float) -> bool:
    bound = FIELDS[name].metadata["bound"]
    if bound == "> 0":
        return number > 0
    if bound == ">= 0":
        return number >= 0
    if bound == ">= 1":
        return number >= 1
    if bound == "port":
        return 0 <= number <= 65535
    return True


def _bad(name: str, raw: object, source: str) -> SettingsError:
    return SettingsError(f"setting {name!r} from {source}: expected {expected(name)}, got {raw!r}")


def _parse_text(name: str, text: str, *, source: str) -> object:
    """Turn the text of an environment variable or flag into the setting's type."""
    kind = _TYPES[name]
    stripped = text.strip()
    if kind is bool:
        lowered = stripped.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise _bad(name, text, source)
    if kind in (int, float):
        try:
            return _coerce(name, kind(stripped), source=source)
        except ValueError:
            raise _bad(name, text, source) from None
    if kind == tuple[str, ...]:
        return tuple(part.strip() for part in stripped.split(",") if part.strip())
    if kind == Mapping[str, float]:
        table: dict[str, object] = {}
        for pair in filter(None, (part.strip() for part in stripped.split(","))):
            state, _, seconds = pair.partition("=")
            try:
                table[state.strip()] = float(seconds)
            except ValueError:
                raise _bad(name, text, source) from None
        return _coerce(name, table, source=source)
    return _coerce(name, text, source=source)


def _coerce(name: str, raw: object, *, source: str, from_text: bool = True) -> object:
    """Check a typed value against the setting's type and range.

    With `from_text`, a string for a non-string setting is parsed as an env value would be
    (CLI flags arrive as text); a TOML file must use the TOML type itself.
    """
    kind = _TYPES[name]
    textual = kind in (str, Path, Path | None) or _is_choice(kind)
    if from_text and isinstance(raw, str) and not textual:
        return _parse_text(name, raw, source=source)
    if kind is bool:
        if not isinstance(raw, bool):
            raise _bad(name, raw, source)
        return raw
    if kind in (int, float):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise _bad(name, raw, source)
        if kind is int and not isinstance(raw, int):
            raise _bad(name, raw, source)
        number = kind(raw)
        if not _in_range(name, number):
            raise _bad(name, raw, source)
        return number
    if _is_choice(kind):
        if raw not in typing.get_args(kind):
            raise _bad(name, raw, source)
        return raw
    if kind == tuple[str, ...]:
        if not isinstance(raw, list | tuple) or not all(isinstance(item, str) for item in raw):
            raise _bad(name, raw, source)
        return tuple(raw)
    if kind == Mapping[str, float]:
        if not isinstance(raw, Mapping) or not all(
            isinstance(value, int | float) and not isinstance(value, bool) and value > 0
            for value in raw.values()
        ):
            raise _bad(name, raw, source)
        return types.MappingProxyType({str(key): float(value) for key, value in raw.items()})
    if kind == Path | None:
        if not isinstance(raw, str | Path):
            raise _bad(name, raw, source)
        return Path(raw) if str(raw) else None
    if kind is Path:
        if not isinstance(raw, str | Path) or not str(raw):
            raise _bad(name, raw, source)
        return Path(raw)
    if not isinstance(raw, str):
        raise _bad(name, raw, source)
    return raw


def _is_choice(kind: object) -> bool:
    return typing.get_origin(kind) is Literal
