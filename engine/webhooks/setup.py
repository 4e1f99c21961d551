"""The webhook server of one engine run, from its settings: which certificates (the
engine's own CA in the state dir, or cert-manager's mounted Secret), the handlers'
deadline (80 % of timeoutSeconds), and the Service's client config."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable

from engine.journal.store import Journal
from engine.runtime.manager.settings import Settings, SettingsError
from engine.runtime.reconcile.operator import Operator
from engine.telemetry.metrics import EngineMetrics
from engine.webhooks.certificates import CERT_DIR, Mounted, SelfSigned, service_hosts
from engine.webhooks.configurations import ClientConfig
from engine.webhooks.server import Certificates, WebhookServerDeps

HANDLER_SHARE = 0.8
"""A handler's deadline, as a share of the configurations' timeoutSeconds."""


def service_of(settings: Settings) -> tuple[str, str] | None:
    """`webhook_service` as (namespace, name), or None when unset.
    Errors: `SettingsError` for a value that is not namespace/name."""
    text = settings.webhook_service.strip()
    if not text:
        return None
    namespace, _, name = text.partition("/")
    if not namespace or not name or "/" in name:
        raise SettingsError(
            f"setting 'webhook_service' ({text!r}) must be namespace/name, for example "
            "engine-system/engine-webhook"
        )
    return namespace, name


def certificates_for(settings: Settings) -> Certificates:
    directory = settings.webhook_cert_dir or settings.state_dir / CERT_DIR
    if settings.webhook_certificates == "cert-manager":
        return Mounted(directory)
    service = service_of(settings)
    hosts = service_hosts(service[1], service[0]) if service else ()
    return SelfSigned(
        directory,
        hosts=hosts,
        rotate_before=datetime.timedelta(days=settings.webhook_cert_rotate_before_days),
    )


def server_deps(
    operator: Operator,
    settings: Settings,
    *,
    journal: Journal,
    metrics: EngineMetrics | None,
    host: str | None = None,
    on_new_ca: Callable[[bytes], Awaitable[None]] | None = None,
) -> WebhookServerDeps:
    return WebhookServerDeps(
        operator=operator,
        journal=journal,
        certificates=certificates_for(settings),
        metrics=metrics,
        host=host or settings.webhook_host,
        port=settings.webhook_port,
        handler_timeout=settings.webhook_timeout_seconds * HANDLER_SHARE,
        on_new_ca=on_new_ca,
        redact_fields=tuple(settings.redact_fields),
    )


def service_client(settings: Settings, ca_pem: bytes | None) -> ClientConfig | None:
    """The client config through `webhook_service`, or None when it is unset."""
    service = service_of(settings)
    if service is None:
        return None
    return ClientConfig(service_name=service[1], service_namespace=service[0], ca_pem=ca_pem)
