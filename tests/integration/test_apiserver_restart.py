"""A server restarted on the same SQLite file keeps its objects and its watch history."""

from __future__ import annotations

from pathlib import Path

from kubernetes_asyncio import watch

from tests.integration.embedded_cluster import NAMESPACE, Cluster, manifest, running_cluster


async def events_since(cluster: Cluster, version: str, *, until: str) -> list[tuple[str, str, int]]:
    """ConfigMap events after `version` up to the one adding `until`: (type, name, RV)."""
    seen: list[tuple[str, str, int]] = []
    stream = watch.Watch()
    async with stream:
        async for event in stream.stream(
            cluster.core.list_namespaced_config_map,
            NAMESPACE,
            label_selector="family=restart",
            resource_version=version,
            timeout_seconds=5,
        ):
            metadata = event["raw_object"]["metadata"]
            seen.append((event["type"], metadata["name"], int(metadata["resourceVersion"])))
            if seen[-1][:2] == ("ADDED", until):
                break
    return seen


async def test_a_watch_resumes_across_a_restart_without_losing_or_repeating_events(
    tmp_path: Path,
) -> None:
    db = tmp_path / "api.db"
    async with running_cluster(db, scratch=tmp_path) as cluster:
        since = await cluster.current_version()
        await cluster.create("ConfigMap", manifest("ConfigMap", "one", "restart"))
        await cluster.create("ConfigMap", manifest("ConfigMap", "two", "restart"))
        before = await events_since(cluster, since, until="two")
        assert [(kind, name) for kind, name, _ in before] == [("ADDED", "one"), ("ADDED", "two")]
        last_seen = str(before[-1][2])
        # A change the watcher has not read yet when the server stops.
        await cluster.merge_patch("ConfigMap", "one", {"data": {"a": "unread"}})

    async with running_cluster(db, scratch=tmp_path) as cluster:
        assert await cluster.family("restart", with_sites=False) == {"one": [], "two": []}
        await cluster.create("ConfigMap", manifest("ConfigMap", "three", "restart"))
        await cluster.core.delete_namespaced_config_map("two", NAMESPACE)
        await cluster.create("ConfigMap", manifest("ConfigMap", "last", "restart"))
        after = await events_since(cluster, last_seen, until="last")
        assert [(kind, name) for kind, name, _ in after] == [
            ("MODIFIED", "one"),
            ("ADDED", "three"),
            ("DELETED", "two"),
            ("ADDED", "last"),
        ]
        versions = [version for _, _, version in before + after]
        assert versions == sorted(set(versions)), f"versions not strictly increasing: {versions}"
        one = await cluster.get("ConfigMap", "one")
        assert one is not None
        assert one["data"] == {"a": "unread"}
