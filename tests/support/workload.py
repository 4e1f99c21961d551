"""A seeded Site workload for the fault tests: create N Sites, then random spec updates
and deletes; and the convergence check against the API server and the registry.

Converged means: every live Site Ready with `status.observedGeneration == generation`,
its ConfigMap and Service present exactly once (by instance label) with the controller
ownerReference to its uid and the current spec, and its registration holding the current
public spec; every deleted Site gone, with no children and no registration left.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from kubernetes_asyncio import client

GROUP, VERSION, PLURAL, NAMESPACE = "example.dev", "v1", "sites", "default"
INSTANCE_LABEL = "app.kubernetes.io/instance"
WORDS = ("hello", "bonjour", "hola", "ciao", "hallo", "salut", "hej", "ahoj")


def registered_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """What the registry should hold for `spec` (the public fields, defaults filled)."""
    return {
        "domain": spec["domain"],
        "replicas": spec.get("replicas", 1),
        "tier": spec.get("tier", "standard"),
        "message": spec.get("message", "hello"),
        "dependsOn": list(spec.get("dependsOn", [])),
    }


@dataclass
class SiteWorkload:
    """The desired state (`live` specs, `deleted` names) and the writes that make it."""

    api: client.ApiClient
    registry_url: str
    seed: int
    live: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    updates: int = 0
    password: str | None = None
    """When set, every Site's `spec.password` (a secret field): the canary of R16."""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    def _spec(self, name: str) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "domain": f"{name}.example.com",
            "replicas": self.rng.randint(1, 3),
            "message": self.rng.choice(WORDS),
        }
        if self.password is not None:
            spec["password"] = self.password
        return spec

    async def create(self, count: int, *, concurrency: int = 16) -> None:
        """Create Sites `s-000`… up to `count` (in parallel, `concurrency` at a time)."""
        first = len(self.live) + len(self.deleted)
        names = [f"s-{n:03d}" for n in range(first, first + count)]
        gate = asyncio.Semaphore(concurrency)

        async def one(name: str) -> None:
            spec = self._spec(name)
            body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Site",
                    "metadata": {"name": name}, "spec": spec}  # fmt: skip
            async with gate:
                await self.custom.create_namespaced_custom_object(
                    GROUP, VERSION, NAMESPACE, PLURAL, body
                )
            self.live[name] = spec

        await asyncio.gather(*(one(name) for name in names))

    async def churn(self, *, updates: int, deletes: int) -> None:
        """Change the spec of `updates` random live Sites and delete `deletes` others."""
        chosen = self.rng.sample(sorted(self.live), min(len(self.live), updates + deletes))
        for name in chosen[:updates]:
            spec = {**self.live[name], "message": self.rng.choice(WORDS) + f"-{self.updates}"}
            spec["replicas"] = self.rng.randint(1, 3)
            await self.custom.patch_namespaced_custom_object(  # type: ignore[call-arg]
                GROUP,
                VERSION,
                NAMESPACE,
                PLURAL,
                name,
                {"spec": spec},
                _content_type="application/merge-patch+json",
            )
            self.live[name] = spec
            self.updates += 1
        for name in chosen[updates:]:
            await self.delete(name)

    async def delete(self, name: str) -> None:
        """Delete the live Site `name`; from now on it must be gone with its children."""
        await self.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        del self.live[name]
        self.deleted.add(name)

    async def divergences(self) -> list[str]:
        """Every way the cluster and registry differ from the desired state (empty: converged)."""
        sites = await self.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
        by_name = {item["metadata"]["name"]: item for item in sites["items"]}
        configmaps = (await self.core.list_namespaced_config_map(NAMESPACE)).items
        services = (await self.core.list_namespaced_service(NAMESPACE)).items
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.registry_url + "/registrations") as response,
        ):
            registrations = {item["name"]: item for item in (await response.json())["items"]}
        problems: list[str] = []
        for name, spec in sorted(self.live.items()):
            site = by_name.get(name)
            if site is None:
                problems.append(f"{name}: missing")
                continue
            problems += _site_problems(name, spec, site)
            uid = site["metadata"]["uid"]
            for kind, children in (("ConfigMap", configmaps), ("Service", services)):
                problems += _child_problems(name, uid, kind, children, spec)
            registration = registrations.get(f"{NAMESPACE}.{name}")
            if registration is None:
                problems.append(f"{name}: not registered")
            elif registration["spec"] != registered_spec(spec):
                problems.append(f"{name}: registered {registration['spec']}, want {spec}")
        for name in sorted(self.deleted):
            if name in by_name:
                problems.append(f"{name}: deleted but still present")
            if f"{NAMESPACE}.{name}" in registrations:
                problems.append(f"{name}: deleted but still registered")
            for kind, children in (("ConfigMap", configmaps), ("Service", services)):
                if [c for c in children if (c.metadata.labels or {}).get(INSTANCE_LABEL) == name]:
                    problems.append(f"{name}: deleted but its {kind} is left")
        return problems

    async def wait_converged(self, *, within: float) -> float:
        """Seconds until converged; fail with the remaining divergences after `within`."""
        began = time.monotonic()
        while problems := await self.divergences():
            if time.monotonic() - began > within:
                shown = "\n".join(problems[:20])
                raise AssertionError(
                    f"not converged within {within} s ({len(problems)} divergences):\n{shown}"
                )
            await asyncio.sleep(0.25)
        return time.monotonic() - began


def _site_problems(name: str, spec: dict[str, Any], site: dict[str, Any]) -> list[str]:
    status = site.get("status") or {}
    generation = site["metadata"].get("generation")
    problems = []
    if status.get("phase") != "Ready":
        problems.append(f"{name}: phase {status.get('phase')} ({status.get('reason', '')})")
    if status.get("observedGeneration") != generation:
        observed = status.get("observedGeneration")
        problems.append(f"{name}: observedGeneration {observed}, generation {generation}")
    if {k: site["spec"].get(k) for k in spec} != spec:
        problems.append(f"{name}: spec {site['spec']} is not the one written ({spec})")
    return problems


def _child_problems(
    name: str, uid: str, kind: str, children: list[Any], spec: dict[str, Any]
) -> list[str]:
    mine = [c for c in children if (c.metadata.labels or {}).get(INSTANCE_LABEL) == name]
    if len(mine) != 1:
        return [f"{name}: {len(mine)} {kind}s, want exactly 1"]
    [child] = mine
    owners = [o for o in child.metadata.owner_references or [] if o.controller]
    if [(o.kind, o.name, o.uid) for o in owners] != [("Site", name, uid)]:
        return [f"{name}: {kind} {child.metadata.name} controller owner {owners}"]
    if kind == "ConfigMap":
        want = {"message": spec["message"], "replicas": str(spec["replicas"])}
        have = {k: (child.data or {}).get(k) for k in want}
        if have != want:
            return [f"{name}: ConfigMap data {json.dumps(have)}, want {json.dumps(want)}"]
    return []
