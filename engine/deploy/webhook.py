"""The objects that serve an operator's webhooks in a cluster: the webhook Service (443 →
the engine's webhook port), the Validating/MutatingWebhookConfiguration and the CRD's
conversion through it, and the certificate, one of two ways:

- self-signed (default): the engine issues its CA and serving certificate into its state
  volume and, at start, applies the configurations and the CRD with that CA as
  `caBundle` (setting `webhook_service`), so the RBAC allows `patch` on them by name;
- cert-manager: an Issuer and a Certificate for the Service's DNS names; its Secret is
  mounted where the engine reads its pair, and `cert-manager.io/inject-ca-from` on the
  configurations and the CRD lets cert-manager's CA injector fill `caBundle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.webhooks.certificates import service_hosts
from engine.webhooks.configurations import (
    ADMISSION_GROUP,
    ClientConfig,
    FailurePolicy,
    configuration_name,
    crd_with_conversion,
    webhook_collections,
    webhook_configurations,
)

if TYPE_CHECKING:
    from engine import Operator

Manifest = dict[str, Any]
WEBHOOK_PORT = 9443
CERT_DIR = "/var/run/engine/webhook-certs"
"""Where the cert-manager Secret is mounted (setting webhook_cert_dir)."""


@dataclass(frozen=True)
class WebhookOptions:
    """How the webhooks are deployed: `cert_manager` (else self-signed), the policy and
    timeout written into the configurations."""

    cert_manager: bool = False
    failure_policy: FailurePolicy = "Fail"
    timeout_seconds: int = 10


def service_name(name: str) -> str:
    return f"{name}-webhook"


def certificate_name(name: str) -> str:
    return f"{name}-webhook-cert"


def client(name: str, namespace: str, options: WebhookOptions) -> ClientConfig:
    inject = f"{namespace}/{certificate_name(name)}" if options.cert_manager else ""
    return ClientConfig(service_name=service_name(name), service_namespace=namespace,
                        inject_ca_from=inject)  # fmt: skip


def service(*, name: str) -> Manifest:
    """`<name>-webhook`: 443 to the engine's webhook port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service_name(name), "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "webhook", "port": 443, "targetPort": "webhook"}],
        },
    }


def configurations(
    operator: Operator, *, name: str, namespace: str, options: WebhookOptions
) -> list[Manifest]:
    return webhook_configurations(
        operator,
        client(name, namespace, options),
        failure_policy=options.failure_policy,
        timeout_seconds=options.timeout_seconds,
    )


def crd(operator: Operator, *, name: str, namespace: str, options: WebhookOptions) -> Manifest:
    return crd_with_conversion(operator, client(name, namespace, options))


def issuer(*, name: str) -> Manifest:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer",
        "metadata": {"name": f"{name}-selfsigned"},
        "spec": {"selfSigned": {}},
    }


def certificate(*, name: str, namespace: str) -> Manifest:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": certificate_name(name)},
        "spec": {
            "secretName": certificate_name(name),
            "dnsNames": list(service_hosts(service_name(name), namespace)[2:]),
            "issuerRef": {"kind": "Issuer", "name": f"{name}-selfsigned"},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "renewBefore": "720h",
        },
    }


def container_additions(
    *, name: str, options: WebhookOptions
) -> tuple[list[Manifest], list[Manifest]]:
    """The webhook container's extra env and ports."""
    env: list[Manifest] = [
        {"name": "ENGINE_WEBHOOK_PORT", "value": str(WEBHOOK_PORT)},
        {"name": "ENGINE_WEBHOOK_FAILURE_POLICY", "value": options.failure_policy},
        {"name": "ENGINE_WEBHOOK_TIMEOUT_SECONDS", "value": str(options.timeout_seconds)},
    ]
    if options.cert_manager:
        env += [
            {"name": "ENGINE_WEBHOOK_CERTIFICATES", "value": "cert-manager"},
            {"name": "ENGINE_WEBHOOK_CERT_DIR", "value": CERT_DIR},
        ]
    else:
        namespace_ref = {"fieldRef": {"fieldPath": "metadata.namespace"}}
        env += [
            {"name": "POD_NAMESPACE", "valueFrom": namespace_ref},
            {"name": "ENGINE_WEBHOOK_SERVICE", "value": f"$(POD_NAMESPACE)/{service_name(name)}"},
        ]
    ports = [{"name": "webhook", "containerPort": WEBHOOK_PORT, "protocol": "TCP"}]
    return env, ports


def with_webhooks(deployment: Manifest, *, name: str, options: WebhookOptions) -> Manifest:
    """`deployment` with the webhook port, env and (cert-manager) the Secret's volume."""
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env, ports = container_additions(name=name, options=options)
    container["env"] = [*container["env"], *env]
    container["ports"] = [*container["ports"], *ports]
    if options.cert_manager:
        mount = {"name": "webhook-certs", "mountPath": CERT_DIR, "readOnly": True}
        volume = {"name": "webhook-certs", "secret": {"secretName": certificate_name(name)}}
        container["volumeMounts"] = [*container["volumeMounts"], mount]
        pod["volumes"] = [*pod["volumes"], volume]
    return deployment


def rbac_rules(operator: Operator, *, options: WebhookOptions) -> list[Manifest]:
    """With self-signed certificates the engine applies its configurations (by name)."""
    if options.cert_manager:
        return []
    plurals = webhook_collections()
    kinds = {"validate": "ValidatingWebhookConfiguration", "mutate": "MutatingWebhookConfiguration"}
    return [
        {
            "apiGroups": [ADMISSION_GROUP],
            "resources": [plurals[kinds[handler]]],
            "resourceNames": [configuration_name(operator, handler)],
            "verbs": ["get", "patch"],
        }
        for handler in ("mutate", "validate")
        if getattr(operator, handler) is not None
    ]
