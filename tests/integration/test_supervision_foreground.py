"""Foreground deletion in the waits-for graph, over real HTTP against the embedded API
server: an owner deleted with `propagationPolicy: Foreground` waits for its blocking
dependents, so a dependent that in turn waits for that owner closes a cycle, reported
like any other deadlock; a foreground deletion without a cycle completes unreported."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from engine.example.registry_client import RegistryClient
from engine.example.site import SiteHandlers, site_operator
from engine.example.site_resource import SITE
from engine.fsm import events as ev
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.operator import Operator
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


async def test_a_site_that_waited_many_times_survives_a_real_failure_with_two_attempts(
    tmp_path: Path,
) -> None:
    settings = supervision_settings(tmp_path, max_effect_attempts=2)
    async with site_cluster(tmp_path) as cluster:
        replica = await cluster.start(settings)
        await cluster.create_site("a", dependsOn=["b"])  # b does not exist yet

        async def waits_of_a() -> list[Any]:
            failed = await replica.records(ev.EFFECT_FAILED)
            return [r for r in failed if "/default/a#" in r.stream and r.data.get("waiting")]

        async def waited_five_times() -> bool:
            return len(await waits_of_a()) >= 5

        await eventually(waited_five_times, "a waited five times for b")
        # every registry call now waits 1 s after it arrived with the faults in force then:
        # b's registration goes through, and a's, which can only follow it, is refused
        await cluster.registry.set_faults(latency_seconds=1.0, retry_after_seconds=0.3)
        await cluster.create_site("b")

        async def b_registering() -> bool:
            started = await replica.records(ev.EFFECT_STARTED)
            return any("/default/b#" in r.stream and r.data["name"] == "register" for r in started)

        await eventually(b_registering, "b's registration sent")
        await asyncio.sleep(0.2)  # it has reached the registry (in-process, 127.0.0.1)
        await cluster.registry.set_faults(failure_rate=1.0)

        async def a_refused() -> bool:
            calls = await cluster.registry.calls()
            return any(c["name"] == "default.a" and c["outcome"] == "unavailable" for c in calls)

        await eventually(a_refused, "a's registration refused once")
        await cluster.registry.set_faults(failure_rate=0.0)
        await cluster.all_ready("a", "b")
        records = [r for r in await replica.records(ev.EFFECT_FAILED) if "/default/a#" in r.stream]
        provision = [r for r in records if r.data["name"] == "provision"]
        assert len([r for r in provision if r.data.get("waiting")]) >= 5
        real = [r for r in provision if not r.data.get("waiting")]
        assert real  # the refused registration failed the provision once, after the waits
        assert real[0].data["attempt"] >= 6  # the plain sequence number includes the waits
        assert not any(r.data["gave_up"] for r in records)
