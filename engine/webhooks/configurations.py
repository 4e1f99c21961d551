"""The webhook configurations of an operator, and its CRD's conversion block.

`ValidatingWebhookConfiguration` / `MutatingWebhookConfiguration` (admissionregistration
.k8s.io/v1), one webhook each, for the operator's resource: its declared operations,
`sideEffects: None`, `failurePolicy`, `timeoutSeconds`, `admissionReviewVersions: [v1]`
and `matchPolicy: Equivalent` on the storage version only, so a request in another
version reaches the handler converted to the storage version. The client config is a
URL (`engine run --local`) or a Service (a cluster), with the CA as `caBundle` or, with
cert-manager, left for its CA injector (`cert-manager.io/inject-ca-from`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.runtime.reconcile.operator import Operator

FailurePolicy = Literal["Fail", "Ignore"]
PATHS = {"validate": "/validate", "mutate": "/mutate", "convert": "/convert"}
INJECT_CA_FROM = "cert-manager.io/inject-ca-from"
ADMISSION_GROUP = "admissionregistration.k8s.io"


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Where the API server reaches the engine's webhook server, and what it trusts.

    Exactly one of `url` (a base URL, `https://127.0.0.1:9443`) and `service_name`
    (with `service_namespace`, port 443) is set. `ca_pem` None: cert-manager injects it,
    from the Certificate `inject_ca_from` (`namespace/name`).
    """

    url: str = ""
    service_name: str = ""
    service_namespace: str = ""
    ca_pem: bytes | None = None
    inject_ca_from: str = ""

    def for_path(self, path: str) -> dict[str, Any]:
        config: dict[str, Any]
        if self.url:
            config = {"url": self.url.rstrip("/") + path}
        else:
            config = {
                "service": {
                    "name": self.service_name,
                    "namespace": self.service_namespace,
                    "path": path,
                    "port": 443,
                }
            }
        if self.ca_pem is not None:
            config["caBundle"] = base64.b64encode(self.ca_pem).decode()
        return config

    def annotations(self) -> dict[str, str]:
        return {INJECT_CA_FROM: self.inject_ca_from} if self.inject_ca_from else {}


def configuration_name(operator: Operator, handler: str) -> str:
    """`validate.<plural>.<group>` or `mutate.<plural>.<group>` (object and webhook)."""
    return f"{handler}.{operator.resource.plural}.{operator.resource.group}"


def _webhook(
    operator: Operator,
    handler: str,
    client: ClientConfig,
    *,
    failure_policy: FailurePolicy,
    timeout_seconds: int,
) -> dict[str, Any]:
    resource = operator.resource
    webhook: dict[str, Any] = {
        "name": configuration_name(operator, handler),
        "clientConfig": client.for_path(PATHS[handler]),
        "rules": [
            {
                "apiGroups": [resource.group],
                "apiVersions": [resource.version],
                "operations": list(operator.admission_operations),
                "resources": [resource.plural],
                "scope": "Namespaced" if resource.namespaced else "Cluster",
            }
        ],
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "failurePolicy": failure_policy,
        "timeoutSeconds": timeout_seconds,
        "admissionReviewVersions": ["v1"],
    }
    if handler == "mutate":
        webhook["reinvocationPolicy"] = "Never"
    return webhook


def webhook_configurations(
    operator: Operator,
    client: ClientConfig,
    *,
    failure_policy: FailurePolicy = "Fail",
    timeout_seconds: int = 10,
) -> list[dict[str, Any]]:
    """The Mutating and Validating configurations the operator declares handlers for
    (mutating first, the order the API server calls them), possibly none."""
    manifests = []
    for handler, kind in (
        ("mutate", "MutatingWebhookConfiguration"),
        ("validate", "ValidatingWebhookConfiguration"),
    ):
        if getattr(operator, handler) is None:
            continue
        metadata: dict[str, Any] = {"name": configuration_name(operator, handler)}
        if client.annotations():
            metadata["annotations"] = client.annotations()
        manifests.append(
            {
                "apiVersion": f"{ADMISSION_GROUP}/v1",
                "kind": kind,
                "metadata": metadata,
                "webhooks": [
                    _webhook(
                        operator,
                        handler,
                        client,
                        failure_policy=failure_policy,
                        timeout_seconds=timeout_seconds,
                    )
                ],
            }
        )
    return manifests


def conversion_block(client: ClientConfig) -> dict[str, Any]:
    """The CRD's `spec.conversion`: strategy Webhook through the engine's /convert."""
    return {
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": client.for_path(PATHS["convert"]),
            "conversionReviewVersions": ["v1"],
        },
    }


def crd_with_conversion(operator: Operator, client: ClientConfig) -> dict[str, Any]:
    """The operator's CRD; with served versions, converting through the engine (and,
    with cert-manager, annotated for its CA injector)."""
    if not operator.resource.served_versions:
        return operator.resource.crd()
    crd = operator.resource.crd(conversion=conversion_block(client))
    if client.annotations():
        crd["metadata"]["annotations"] = client.annotations()
    return crd


def webhook_collections() -> Mapping[str, str]:
    """Kind → plural of the two configuration kinds (cluster-scoped)."""
    return {
        "MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
        "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
    }
