"""Foreground deletion in the waits-for graph, over real HTTP against the embedded API
server: an owner deleted with `propagationPolicy: Foreground` waits for its blocking
dependents, so a dependent that in turn waits for that owner closes a cycle, reported
like any other deadlock; a foreground deletion without a cycle completes unreported."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from engine.example.registry_client import RegistryClient
from engine.example.site import SiteHandlers, site_operator
from engine.example.site_resource import SITE
from engine.fsm import events as ev
from engine.runtime.context import Context
from engine.runtime.operator import Operator
from tests.integration.reconcile_support import eventually
from tests.integration.supervision_support import (
    SITES,
    Cluster,
    cycle_of,
    site_cluster,
    supervision_settings,
)

FOREGROUND = {"propagationPolicy": "Foreground"}


def owner_waiting_operator(registry: RegistryClient) -> Operator:
    """The Site operator, except that a Site's finalize first waits until every Site that
    owns it is Ready (a cleanup that needs its owner up)."""
    handlers = SiteHandlers(registry)

    async def finalize(ctx: Context) -> None:
        for ref in ctx.metadata.get("ownerReferences") or ():
            if ref.get("kind") == SITE.kind:
                await ctx.wait_until_ready(str(ref["name"]))
        await handlers.finalize(ctx)

    return dataclasses.replace(site_operator(registry), finalize=finalize)


async def create_owned_site(cluster: Cluster, name: str, owner: dict[str, Any]) -> None:
    """Site `name` owned by `owner` with blockOwnerDeletion: true."""
    reference = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": True,
    }
    body = {
        "apiVersion": f"{SITE.group}/{SITE.version}",
        "kind": SITE.kind,
        "metadata": {"name": name, "namespace": "default", "ownerReferences": [reference]},
        "spec": {"domain": f"{name}.example.com"},
    }
    status, made = await cluster.api.request("POST", SITES, body)
    assert status == 201, made


async def test_a_foreground_deletion_waiting_on_a_dependent_that_waits_for_it_is_a_deadlock(
    tmp_path: Path,
) -> None:
    async with site_cluster(tmp_path) as cluster:
        replica = await cluster.start(
            supervision_settings(tmp_path), owner_waiting_operator(cluster.registry)
        )
        owner = await cluster.create_site("b", dependsOn=["missing"])  # never Ready
        await create_owned_site(cluster, "a", owner)
        await cluster.all_ready("a")
        assert await replica.records(ev.DEADLOCK_DETECTED) == []
        status, answer = await cluster.api.request("DELETE", f"{SITES}/b", FOREGROUND)
        assert status in (200, 202), answer

        async def reported() -> bool:
            found = await replica.records(ev.DEADLOCK_DETECTED)
            events = await cluster.events("DeadlockDetected")
            return len({r.stream for r in found}) == 2 and len(events) == 2

        await eventually(reported, "DeadlockDetected in the journal of a and b")
        found = await replica.records(ev.DEADLOCK_DETECTED)
        assert len(found) == 2  # one cycle, journaled once in each member's stream
        assert {tuple(sorted(cycle_of(r))) for r in found} == {("default/a", "default/b")}
        for name, other in (("a", "b"), ("b", "a")):
            condition = await cluster.condition(name, "Deadlocked")
            assert condition is not None
            assert condition["status"] == "True"
            assert f"default/{other}" in condition["message"]
        events = await cluster.events("DeadlockDetected")
        assert {e["involvedObject"]["name"] for e in events} == {"a", "b"}
        assert all(e["type"] == "Warning" for e in events)
        # the deadlock is real: both are held, being deleted
        for name in ("a", "b"):
            site = await cluster.site(name)
            assert site is not None
            assert site["metadata"].get("deletionTimestamp")


async def test_a_foreground_deletion_without_a_cycle_completes_with_no_report(
    tmp_path: Path,
) -> None:
    async with site_cluster(tmp_path) as cluster:
        replica = await cluster.start(supervision_settings(tmp_path))
        owner = await cluster.create_site("b")
        await cluster.all_ready("b")
        await create_owned_site(cluster, "a", owner)
        await cluster.all_ready("a")
        status, answer = await cluster.api.request("DELETE", f"{SITES}/b", FOREGROUND)
        assert status in (200, 202), answer

        async def gone() -> bool:
            return await cluster.site("a") is None and await cluster.site("b") is None

        await eventually(gone, "a, then b, deleted", within=15)
        assert await replica.records(ev.DEADLOCK_DETECTED) == []
        assert await cluster.events("DeadlockDetected") == []
        assert await cluster.registry.registrations() == []  # both finalized
