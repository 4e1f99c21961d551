"""Garbage collection over real HTTP: each propagation policy, dangling and shared owners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.embedded_cluster import (
    Cluster,
    eventually,
    manifest,
    owner_reference,
    running_cluster,
)

HOLD = "example.dev/hold"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running_cluster(scratch=tmp_path) as cluster:
        await cluster.install_site_crd()
        yield cluster


async def make_family(cluster: Cluster, owner_kind: str, tag: str) -> str:
    """An owner with a ConfigMap and a Site depending on it; the owner's uid."""
    owner = await cluster.create(owner_kind, manifest(owner_kind, f"{tag}-owner", tag))
    await cluster.create("ConfigMap", manifest("ConfigMap", f"{tag}-map", tag, owners=(owner,)))
    await cluster.create("Site", manifest("Site", f"{tag}-site", tag, owners=(owner,)))
    return str(owner["metadata"]["uid"])


OWNER_KINDS = [pytest.param("ConfigMap", id="configmap-owner"), pytest.param("Site", id="cr-owner")]


@pytest.mark.parametrize("owner_kind", OWNER_KINDS)
async def test_background_deletion_removes_the_owner_then_every_dependent(
    cluster: Cluster, owner_kind: str
) -> None:
    await make_family(cluster, owner_kind, "bg")
    await cluster.delete(owner_kind, "bg-owner", "Background")
    assert await cluster.get(owner_kind, "bg-owner") is None

    async def all_gone() -> bool:
        return await cluster.family("bg") == {}

    await eventually(all_gone, "the background owner's dependents are collected")


@pytest.mark.parametrize("owner_kind", OWNER_KINDS)
async def test_foreground_deletion_removes_the_dependents_before_the_owner(
    cluster: Cluster, owner_kind: str
) -> None:
    await make_family(cluster, owner_kind, "fg")
    since = await cluster.current_version()
    await cluster.delete(owner_kind, "fg-owner", "Foreground")
    owner = {"fg-owner"}
    map_names = {"fg-map"} | (owner if owner_kind == "ConfigMap" else set())
    site_names = {"fg-site"} | (owner if owner_kind == "Site" else set())
    maps, sites = await asyncio.gather(
        cluster.deletion_versions("ConfigMap", "fg", since=since, names=map_names),
        cluster.deletion_versions("Site", "fg", since=since, names=site_names),
    )
    deleted = maps | sites
    assert deleted["fg-owner"] > deleted["fg-map"], deleted
    assert deleted["fg-owner"] > deleted["fg-site"], deleted
    assert await cluster.family("fg") == {}


@pytest.mark.parametrize("owner_kind", OWNER_KINDS)
async def test_orphan_deletion_keeps_the_dependents_without_the_reference(
    cluster: Cluster, owner_kind: str
) -> None:
    await make_family(cluster, owner_kind, "or")
    await cluster.delete(owner_kind, "or-owner", "Orphan")

    async def owner_gone() -> bool:
        return await cluster.get(owner_kind, "or-owner") is None

    await eventually(owner_gone, "the orphaning owner is removed")
    assert await cluster.family("or") == {"or-map": [], "or-site": []}


async def test_a_dependent_of_an_owner_that_never_existed_is_deleted(cluster: Cluster) -> None:
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "0f"}}
    await cluster.create("ConfigMap", manifest("ConfigMap", "dangling", "dg", owners=(ghost,)))

    async def collected() -> bool:
        return await cluster.get("ConfigMap", "dangling") is None

    await eventually(collected, "the dependent of a missing owner is collected")


async def test_a_dependent_with_two_owners_outlives_one_and_loses_only_its_link(
    cluster: Cluster,
) -> None:
    first = await cluster.create("ConfigMap", manifest("ConfigMap", "first", "two"))
    second = await cluster.create("Site", manifest("Site", "second", "two"))
    await cluster.create(
        "ConfigMap", manifest("ConfigMap", "shared", "two", owners=(first, second))
    )
    await cluster.delete("ConfigMap", "first", "Background")
    second_uid = second["metadata"]["uid"]

    async def only_second_left() -> bool:
        return (await cluster.family("two")).get("shared") == [second_uid]

    await eventually(only_second_left, "the shared dependent drops the deleted owner")
    assert await cluster.family("two") == {"second": [], "shared": [second_uid]}
    await cluster.delete("Site", "second", "Background")

    async def shared_gone() -> bool:
        return await cluster.get("ConfigMap", "shared") is None

    await eventually(shared_gone, "the dependent goes with its last owner")


async def test_foreground_waits_for_a_blocking_dependent_until_its_finalizer_is_removed(
    cluster: Cluster,
) -> None:
    owner = await cluster.create("Site", manifest("Site", "holder", "hold"))
    held = manifest("Site", "held", "hold", owners=(owner,), finalizers=(HOLD,))
    await cluster.create("Site", held)
    await cluster.delete("Site", "holder", "Foreground")

    async def dependent_deleting() -> bool:
        found = await cluster.get("Site", "held")
        return found is not None and "deletionTimestamp" in found["metadata"]

    await eventually(dependent_deleting, "the collector deletes the blocking dependent")
    still = await cluster.get("Site", "holder")
    assert still is not None, "the owner went before its blocking dependent"
    assert "foregroundDeletion" in still["metadata"]["finalizers"]
    assert "deletionTimestamp" in still["metadata"]

    await cluster.merge_patch("Site", "held", {"metadata": {"finalizers": None}})

    async def both_gone() -> bool:
        return await cluster.family("hold") == {}

    await eventually(both_gone, "owner and dependent go once the finalizer is removed")


async def test_a_non_blocking_reference_does_not_hold_a_foreground_owner(
    cluster: Cluster,
) -> None:
    owner = await cluster.create("Site", manifest("Site", "loose", "nb"))
    loose = manifest("Site", "tied", "nb", finalizers=(HOLD,))
    loose["metadata"]["ownerReferences"] = [owner_reference(owner, block=False)]
    await cluster.create("Site", loose)
    await cluster.delete("Site", "loose", "Foreground")

    async def owner_gone() -> bool:
        return await cluster.get("Site", "loose") is None

    await eventually(owner_gone, "the owner goes while the non-blocking dependent finalizes")
    tied = await cluster.get("Site", "tied")
    assert tied is not None
    assert "deletionTimestamp" in tied["metadata"]
    await cluster.merge_patch("Site", "tied", {"metadata": {"finalizers": None}})
