"""Watch over real HTTP with kubernetes-asyncio: resume from a resourceVersion without gaps
or duplicates, bookmarks, timeoutSeconds, 410 after compaction, selector semantics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import watch
from kubernetes_asyncio.client.exceptions import ApiException

from engine.apiserver.http.embedded import serve_apiserver
from engine.apiserver.store.api_context import Settings
from engine.apiserver.store.restore import restore_database
from tests.integration.apiserver_support import connected


def configmap(name: str, value: str = "v", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": value}}


async def _collect(stream: Any, count: int) -> list[tuple[str, str, str]]:
    events: list[tuple[str, str, str]] = []
    async for event in stream:
        obj = event["raw_object"]
        events.append(
            (event["type"], obj["metadata"].get("name", ""), obj["metadata"]["resourceVersion"])
        )
        if len(events) >= count:
            break
    return events


async def test_watch_from_a_resource_version_replays_then_streams_live_changes() -> None:
    async with connected() as conn:
        first = await conn.core.create_namespaced_config_map("default", configmap("a"))
        start = first.metadata.resource_version
        await conn.core.patch_namespaced_config_map("a", "default", {"data": {"k": "2"}})
        await conn.core.create_namespaced_config_map("default", configmap("b"))
        watcher = watch.Watch()
        stream = watcher.stream(
            conn.core.list_namespaced_config_map,
            "default",
            resource_version=start,
            timeout_seconds=10,
        )
        replayed = await _collect(stream, 2)
        assert [(t, n) for t, n, _ in replayed] == [("MODIFIED", "a"), ("ADDED", "b")]
        await conn.core.delete_namespaced_config_map("a", "default")
        live = await _collect(stream, 1)
        watcher.stop()
        assert [(t, n) for t, n, _ in live] == [("DELETED", "a")]
        revisions = [int(rv) for _, _, rv in replayed + live]
        assert revisions == sorted(set(revisions))


async def test_watch_without_resource_version_starts_with_synthetic_added_events() -> None:
    async with connected() as conn:
        await conn.core.create_namespaced_config_map("default", configmap("x"))
        await conn.core.create_namespaced_config_map("default", configmap("y"))
        watcher = watch.Watch()
        stream = watcher.stream(conn.core.list_namespaced_config_map, "default", timeout_seconds=10)
        events = await _collect(stream, 2)
        watcher.stop()
        assert sorted((t, n) for t, n, _ in events) == [("ADDED", "x"), ("ADDED", "y")]


async def test_no_gap_or_duplicate_while_writes_race_the_replay() -> None:
    async with connected() as conn:
        start = (await conn.core.list_namespaced_config_map("default")).metadata.resource_version
        writer = asyncio.create_task(_write_many(conn.core, 40))
        watcher = watch.Watch()
        stream = watcher.stream(
            conn.core.list_namespaced_config_map,
            "default",
            resource_version=start,
            timeout_seconds=20,
        )
        events = await _collect(stream, 40)
        watcher.stop()
        await writer
        assert [n for _, n, _ in events] == [f"w{i:02d}" for i in range(40)]
        revisions = [int(rv) for _, _, rv in events]
        assert revisions == sorted(set(revisions))


async def _write_many(core: Any, count: int) -> None:
    for index in range(count):
        await core.create_namespaced_config_map("default", configmap(f"w{index:02d}"))


async def test_bookmarks_arrive_with_the_latest_revision_when_asked_for() -> None:
    settings = Settings(bookmark_interval=0.05)
    async with connected(settings) as conn:
        made = await conn.core.create_namespaced_config_map("default", configmap("bm"))
        url = (
            f"{conn.server.url}/api/v1/namespaces/default/configmaps"
            f"?watch=True&allowWatchBookmarks=True&resourceVersion={made.metadata.resource_version}"
            "&timeoutSeconds=1"
        )
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("application/json")
            lines = [json.loads(line) async for line in response.content if line.strip()]
        bookmarks = [e for e in lines if e["type"] == "BOOKMARK"]
        assert len(bookmarks) >= 2
        assert (
            bookmarks[-1]["object"]["metadata"]["resourceVersion"] == made.metadata.resource_version
        )
        assert {e["type"] for e in lines} == {"BOOKMARK"}


async def test_kubernetes_asyncio_watch_passes_bookmarks_through() -> None:
    settings = Settings(bookmark_interval=0.05)
    async with connected(settings) as conn:
        made = await conn.core.create_namespaced_config_map("default", configmap("bm"))
        watcher = watch.Watch()
        stream = watcher.stream(
            conn.core.list_namespaced_config_map,
            "default",
            resource_version=made.metadata.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=5,
        )
        async for event in stream:
            assert event["type"] == "BOOKMARK"
            break
        watcher.stop()
        assert watcher.resource_version == made.metadata.resource_version


async def test_watch_from_a_compacted_revision_raises_410() -> None:
    async with connected(Settings(retention=5)) as conn:
        first = await conn.core.create_namespaced_config_map("default", configmap("old"))
        for index in range(20):
            await conn.core.patch_namespaced_config_map(
                "old", "default", {"data": {"k": str(index)}}
            )
        watcher = watch.Watch()
        stream = watcher.stream(
            conn.core.list_namespaced_config_map,
            "default",
            resource_version=first.metadata.resource_version,
            timeout_seconds=5,
        )
        with pytest.raises(ApiException) as caught:
            async for _ in stream:
                pass
        assert caught.value.status == 410
        assert "too old resource version" in str(caught.value)


async def test_compacted_continue_token_is_410_expired() -> None:
    async with connected(Settings(retention=5)) as conn:
        for index in range(3):
            await conn.core.create_namespaced_config_map("default", configmap(f"c{index}"))
        page = await conn.core.list_namespaced_config_map("default", limit=1)
        token = page.metadata._continue
        assert token
        for index in range(20):
            await conn.core.patch_namespaced_config_map(
                "c0", "default", {"data": {"k": str(index)}}
            )
        with pytest.raises(ApiException) as caught:
            await conn.core.list_namespaced_config_map("default", limit=1, _continue=token)
        assert caught.value.status == 410


async def test_object_that_stops_matching_the_selector_is_deleted_for_that_watcher() -> None:
    async with connected() as conn:
        made = await conn.core.create_namespaced_config_map("default", configmap("s", tier="web"))
        watcher = watch.Watch()
        stream = watcher.stream(
            conn.core.list_namespaced_config_map,
            "default",
            label_selector="tier=web",
            resource_version=made.metadata.resource_version,
            timeout_seconds=10,
        )
        await conn.core.patch_namespaced_config_map(
            "s", "default", {"metadata": {"labels": {"tier": "db"}}}
        )
        events = await _collect(stream, 1)
        watcher.stop()
        assert [(t, n) for t, n, _ in events] == [("DELETED", "s")]


async def test_a_watch_or_list_beyond_the_store_revision_is_504_resource_version_too_large() -> (
    None
):
    async with connected() as conn:
        made = await conn.core.create_namespaced_config_map("default", configmap("now"))
        ahead = str(int(made.metadata.resource_version) + 100)
        url = f"{conn.server.plain_url}/api/v1/namespaces/default/configmaps"
        async with aiohttp.ClientSession() as session:
            for query in (f"?watch=true&resourceVersion={ahead}", f"?resourceVersion={ahead}"):
                async with session.get(url + query) as response:
                    status = await response.json(content_type=None)
                assert response.status == 504, status
                assert status["reason"] == "Timeout"
                assert status["message"].startswith(f"Timeout: Too large resource version: {ahead}")
                assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
            # a version the store reaches within the wait is served as before
            soon = str(int(made.metadata.resource_version) + 1)
            asked = asyncio.ensure_future(session.get(f"{url}?watch=true&resourceVersion={soon}"))
            await asyncio.sleep(0.1)  # the watch waits for the store
            await conn.core.create_namespaced_config_map("default", configmap("next"))  # soon
            await conn.core.create_namespaced_config_map("default", configmap("after"))
            async with await asked as response:
                line = json.loads(await asyncio.wait_for(response.content.readline(), 10))
            assert response.status == 200
            assert (line["type"], line["object"]["metadata"]["name"]) == ("ADDED", "after")


async def test_after_a_restore_with_the_revision_bumped_old_versions_are_410_expired(
    tmp_path: Path,
) -> None:
    """`engine apiserver restore`: a watch from a version handed out before the restore,
    newer than the backup, is Expired (not a silent resume once the restored server's
    revision passes it); a continue token from before is Expired; a fresh list and a
    watch from its version work as always."""
    db, backup, restored = tmp_path / "api.db", tmp_path / "backup.db", tmp_path / "restored.db"
    path = "/api/v1/namespaces/default/configmaps"
    async with serve_apiserver(db=str(db)) as server, aiohttp.ClientSession() as session:
        url = server.plain_url + path
        for name in ("kept", "other"):
            async with session.post(url, json=configmap(name)) as response:
                assert response.status == 201
        with (
            contextlib.closing(sqlite3.connect(db)) as live,
            contextlib.closing(sqlite3.connect(backup)) as copy,
        ):
            live.backup(copy)
        async with session.post(url, json=configmap("after")) as response:
            resume = (await response.json())["metadata"]["resourceVersion"]
        async with session.get(f"{url}?limit=1") as response:
            token = (await response.json())["metadata"]["continue"]
    done = restore_database(backup, restored)
    assert done.backup_revision < int(resume) < done.revision
    async with serve_apiserver(db=str(restored)) as server, aiohttp.ClientSession() as session:
        url = server.plain_url + path
        async with session.get(f"{url}?watch=true&resourceVersion={resume}") as response:
            assert response.status == 200
            line = json.loads(await asyncio.wait_for(response.content.readline(), 10))
        assert line["type"] == "ERROR"
        assert (line["object"]["code"], line["object"]["reason"]) == (410, "Expired")
        assert "too old resource version" in line["object"]["message"]
        async with session.get(f"{url}?limit=1&continue={token}") as response:
            assert response.status == 410
        async with session.get(url) as response:
            listed = await response.json()
        assert sorted(item["metadata"]["name"] for item in listed["items"]) == ["kept", "other"]
        assert int(listed["metadata"]["resourceVersion"]) >= done.revision
        version = listed["metadata"]["resourceVersion"]
        watching = asyncio.ensure_future(session.get(f"{url}?watch=true&resourceVersion={version}"))
        await asyncio.sleep(0.1)
        async with session.post(url, json=configmap("new")) as response:
            made = await response.json()
        assert int(made["metadata"]["resourceVersion"]) > done.revision
        async with await watching as response:
            line = json.loads(await asyncio.wait_for(response.content.readline(), 10))
        assert (line["type"], line["object"]["metadata"]["name"]) == ("ADDED", "new")
