"""Putting the operator's webhooks into a cluster: its webhook configurations and, with
served versions, its CRD converting through the engine, each server-side applied (so a
restart with a new port or a rotated CA updates them in place)."""

from __future__ import annotations

from engine.effects.install import (
    Collection,
    KubeApi,
    apply_cluster_object,
    apply_definition,
)
from engine.runtime.reconcile.operator import Operator
from engine.webhooks.configurations import (
    ADMISSION_GROUP,
    ClientConfig,
    FailurePolicy,
    crd_with_conversion,
    webhook_collections,
    webhook_configurations,
)


async def register_webhooks(
    api: KubeApi,
    operator: Operator,
    client: ClientConfig,
    *,
    failure_policy: FailurePolicy,
    timeout_seconds: int,
) -> list[str]:
    """Apply the CRD (with its conversion webhook) and the webhook configurations;
    return what was applied, as `Kind/name`. Errors: `InstallError`."""
    applied: list[str] = []
    if operator.resource.served_versions:
        crd = crd_with_conversion(operator, client)
        await apply_definition(api, crd)
        applied.append(f"CustomResourceDefinition/{crd['metadata']['name']}")
    plurals = webhook_collections()
    for manifest in webhook_configurations(
        operator, client, failure_policy=failure_policy, timeout_seconds=timeout_seconds
    ):
        collection = Collection(ADMISSION_GROUP, "v1", plurals[manifest["kind"]], namespaced=False)
        await apply_cluster_object(api, collection, manifest)
        applied.append(f"{manifest['kind']}/{manifest['metadata']['name']}")
    return applied
