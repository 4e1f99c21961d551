"""The example operator: a `Site` owns a ConfigMap and a Service (and, when it names an
image, a Deployment) and is registered with the example registry service; deleting it
unregisters it (which is why it needs a finalizer).

Provision: check the spec is one the registry accepts (else `PermanentError` → Failed),
apply `<name>-config` and `<name>-web` (and the `<name>-web` Deployment, then wait until it
is available), wait until every Site named in `dependsOn` is Ready, then register under
the step's idempotency key and the leader term. Finalize:
unregister. The children go with the Site through the API server's garbage collector
(ownerReferences).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.effects.errors import PermanentError, RetryableError
from engine.example.child_names import label_child, label_value, subdomain_child
from engine.example.registry_client import (
    PermanentRegistryError,
    RegistryClient,
    RetryableRegistryError,
    StaleTermError,
)
from engine.example.site_resource import CONFIG_MAP, DEPLOYMENT, SERVICE, SITE
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.operator import Operator

RESERVED_DOMAINS = ("invalid.example",)
"""Domains the registry refuses outright (besides anything under the `.invalid` TLD)."""
BASIC_TIER_MAX_REPLICAS = 3
STALE_TERM_RETRY_SECONDS = 2.0
"""Retry delay after a stale-term refusal: about one lease retry period, by when this
replica has either renewed with a higher term or stopped reconciling."""
INSTANCE_LABEL = "app.kubernetes.io/instance"


def unsupported_reason(spec: Mapping[str, Any]) -> str | None:
    """Why the registry cannot take this spec (a message for status), or None when it can.

    Pure; it never mentions the password.
    """
    domain = str(spec.get("domain", ""))
    if domain in RESERVED_DOMAINS or domain.endswith(".invalid"):
        return f"domain {domain} is reserved and cannot be registered; choose another domain"
    replicas = int(spec.get("replicas", 1))
    if spec.get("tier", "standard") == "basic" and replicas > BASIC_TIER_MAX_REPLICAS:
        return (
            f"the basic tier allows at most {BASIC_TIER_MAX_REPLICAS} replicas, the spec asks "
            f"for {replicas}; lower spec.replicas or choose tier standard"
        )
    return None


def registration_name(namespace: str, name: str) -> str:
    """The registry's name for a Site (namespaces hold no dots, so it is unambiguous)."""
    return f"{namespace}.{name}"


def registration_payload(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What is registered: the public part of the spec (never the password)."""
    return {
        "domain": str(spec.get("domain", "")),
        "replicas": int(spec.get("replicas", 1)),
        "tier": str(spec.get("tier", "standard")),
        "message": str(spec.get("message", "hello")),
        "dependsOn": [str(item) for item in spec.get("dependsOn", [])],
    }


def config_map(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The `<name>-config` ConfigMap: the public spec as data (never the password).

    A name too long for the suffix is shortened with a hash (`child_names`)."""
    public = registration_payload(spec)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": subdomain_child(name, "config"),
            "labels": {INSTANCE_LABEL: label_value(name)},
        },
        "data": {
            "domain": public["domain"],
            "replicas": str(public["replicas"]),
            "tier": public["tier"],
            "message": public["message"],
            "dependsOn": json.dumps(public["dependsOn"]),
        },
    }


def web_service(name: str) -> dict[str, Any]:
    """The `<name>-web` Service in front of the site's pods; a Site name that is no
    DNS-1035 label with the suffix (over 63 characters, dots, a digit first) gives a
    hash-shortened one (`child_names`)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": label_child(name, "web"),
            "labels": {INSTANCE_LABEL: label_value(name)},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {INSTANCE_LABEL: label_value(name)},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    }


def web_deployment(name: str, spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `<name>-web` Deployment of `spec.replicas` pods running `spec.image` behind the
    Service, with `spec.podAnnotations` on its pods (None when the spec names no image)."""
    image = spec.get("image")
    if not image:
        return None
    labels = {INSTANCE_LABEL: label_value(name)}
    annotations = spec.get("podAnnotations") or {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": label_child(name, "web"), "labels": dict(labels)},
        "spec": {
            "replicas": int(spec.get("replicas", 1)),
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    **({"annotations": dict(annotations)} if annotations else {}),
                },
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": str(image),
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


def _as_effect_error(error: Exception) -> Exception:
    """Map a registry error to the effect runner's vocabulary.

    A stale fencing term is retryable, not permanent: the refusal says this replica is no
    longer the leader, nothing about the Site, so marking the Site Failed would record a
    false fact that only a spec change could clear. The retry runs under the same key; by
    then the replica has a new term or has stopped reconciling, and the attempts are bounded.
    """
    if isinstance(error, RetryableRegistryError):
        return RetryableError(f"registry unavailable: {error}", delay=error.retry_after or 0.0)
    if isinstance(error, StaleTermError):
        return RetryableError(
            f"registry refused a stale term: {error}", delay=STALE_TERM_RETRY_SECONDS
        )
    if isinstance(error, PermanentRegistryError):
        return PermanentError(f"registry refused the site ({error.status}): {error}")
    return error


@dataclass(frozen=True)
class SiteHandlers:
    """The provision and finalize handlers over one open `RegistryClient`."""

    registry: RegistryClient

    async def provision(self, ctx: Context) -> None:
        """Children first, then the registration; each a step under its own key."""
        reason = unsupported_reason(ctx.spec)
        if reason is not None:
            raise PermanentError(reason)
        await ctx.apply_child(config_map(ctx.name, ctx.spec))
        await ctx.apply_child(web_service(ctx.name))
        deployment = web_deployment(ctx.name, ctx.spec)
        if deployment is not None:
            await ctx.apply_child(deployment)
            await ctx.wait_for_child(deployment)
        name = registration_name(ctx.namespace, ctx.name)
        payload = registration_payload(ctx.spec)
        for needed in payload["dependsOn"]:
            await ctx.wait_until_ready(needed)

        async def register(key: str) -> dict[str, Any]:
            try:
                done = await self.registry.register(
                    name, payload, idempotency_key=key, term=ctx.term
                )
            except (RetryableRegistryError, StaleTermError, PermanentRegistryError) as error:
                raise _as_effect_error(error) from None
            return {"name": done.name, "revision": done.revision}

        await ctx.effect("register", register)

    async def finalize(self, ctx: Context) -> None:
        """Unregister (idempotent: a Site never registered is simply not found)."""
        name = registration_name(ctx.namespace, ctx.name)

        async def unregister(key: str) -> dict[str, Any]:
            try:
                deleted = await self.registry.unregister(name, idempotency_key=key, term=ctx.term)
            except (RetryableRegistryError, StaleTermError, PermanentRegistryError) as error:
                raise _as_effect_error(error) from None
            return {"name": name, "deleted": deleted}

        await ctx.effect("unregister", unregister)


def site_operator(registry: RegistryClient) -> Operator:
    """The Site operator, calling the registry through `registry` (opened by the caller)."""
    handlers = SiteHandlers(registry)
    return Operator(
        resource=SITE,
        provision=handlers.provision,
        finalize=handlers.finalize,
        children=(CONFIG_MAP, SERVICE, DEPLOYMENT),
        secret_fields=("spec.password",),
    )
