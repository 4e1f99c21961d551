"""The watcher over real HTTP against the embedded API server, with kubernetes-asyncio."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient, CoreV1Api

from engine.apiserver.http.embedded import serve_apiserver
from engine.apiserver.store.api_context import Settings
from engine.watchers import (
    BackoffPolicy,
    Change,
    ChangeOrigin,
    ChangeType,
    Kind,
    KubeResources,
    RestartReason,
    Sink,
    Watcher,
    WatcherConfig,
    connect_kubeconfig,
)

CONFIGMAPS = Kind("", "v1", "configmaps", "ConfigMap", namespaced=True)
FAST = Settings(bookmark_interval=0.2)


class Recorder:
    """A sink that keeps every change and lets a test wait for a condition on them."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self._changed = asyncio.Condition()

    async def __call__(self, change: Change) -> None:
        async with self._changed:
            self.changes.append(change)
            self._changed.notify_all()

    async def wait_until(
        self, predicate: Callable[[list[Change]], bool], seconds: float = 5.0
    ) -> None:
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(lambda: predicate(self.changes))

    def seen(self, *, skip: int = 0) -> list[tuple[str, str, str]]:
        return [(c.type.value, c.origin.value, c.name) for c in self.changes[skip:]]


def config(sink: Sink, **overrides: Any) -> WatcherConfig:
    settings: dict[str, Any] = {
        "sink": sink,
        "backoff": BackoffPolicy(initial=0.2, cap=1.0, jitter=0.0),
        "inactivity_limit": 5.0,
        "request_timeout": 5.0,
    }
    settings.update(overrides)
    return WatcherConfig(**settings)


async def eventually(check: Callable[[], bool], seconds: float = 3.0) -> None:
    """Poll `check`: the state it reads (resume point, counters) has no event to await."""
    async with asyncio.timeout(seconds):
        while not check():  # noqa: ASYNC110 - polling watcher state, not a signal
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(watcher: Watcher) -> AsyncIterator[None]:
    task = asyncio.create_task(watcher.run())
    try:
        async with asyncio.timeout(5):
            await watcher.synced.wait()
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def client_for(kubeconfig: Path) -> AsyncIterator[ApiClient]:
    client = await connect_kubeconfig(kubeconfig)
    try:
        yield client
    finally:
        await client.close()


async def make_configmap(
    core: CoreV1Api, name: str, *, namespace: str = "default", labels: dict[str, str] | None = None
) -> None:
    body = {"metadata": {"name": name, "labels": labels or {}}, "data": {"v": "1"}}
    await core.create_namespaced_config_map(namespace, body)


async def change_configmap(
    core: CoreV1Api, name: str, value: str, namespace: str = "default"
) -> None:
    await core.patch_namespaced_config_map(
        name, namespace, {"data": {"v": value}}, _content_type="application/merge-patch+json"
    )


async def make_namespace(core: CoreV1Api, name: str) -> None:
    await core.create_namespace({"metadata": {"name": name}})


async def test_initial_list_delivers_every_object_then_live_changes_arrive_in_order() -> None:
    async with (
        serve_apiserver(settings=FAST) as server,
        client_for(server.kubeconfig_path) as client,
    ):
        core = CoreV1Api(client)
        for name in ("a", "b", "c"):
            await make_configmap(core, name)
        sink = Recorder()
        watcher = Watcher(CONFIGMAPS, KubeResources(client), config(sink, namespaces=("default",)))
        async with running(watcher):
            assert sorted(sink.seen()) == [
                ("added", "relist", "a"),
                ("added", "relist", "b"),
                ("added", "relist", "c"),
            ]
            await make_configmap(core, "d")
            await change_configmap(core, "a", "2")
            await core.delete_namespaced_config_map("b", "default")
            await sink.wait_until(lambda changes: len(changes) == 6)
            assert sink.seen(skip=3) == [
                ("added", "watch", "d"),
                ("modified", "watch", "a"),
                ("deleted", "watch", "b"),
            ]
            modified = sink.changes[4]
            assert modified.previous is not None
            assert modified.previous["data"] == {"v": "1"}
            assert modified.obj["data"] == {"v": "2"}
            assert [o["metadata"]["name"] for o in watcher.cache.objects()] == ["a", "c", "d"]
            assert watcher.last_event_monotonic is not None
            assert watcher.restarts == {}


async def test_bookmark_advances_the_resume_point_and_delivers_nothing() -> None:
    async with (
        serve_apiserver(settings=FAST) as server,
        client_for(server.kubeconfig_path) as client,
    ):
        core = CoreV1Api(client)
        await make_configmap(core, "mine")
        sink = Recorder()
        watcher = Watcher(CONFIGMAPS, KubeResources(client), config(sink, namespaces=("default",)))
        async with running(watcher):
            listed_at = int(watcher.resource_versions["default"])
            await make_configmap(core, "elsewhere", namespace="kube-system")
            await eventually(lambda: int(watcher.resource_versions["default"]) > listed_at)
            assert sink.seen() == [("added", "relist", "mine")]


async def test_resync_redelivers_every_cached_object_unchanged() -> None:
    async with (
        serve_apiserver(settings=FAST) as server,
        client_for(server.kubeconfig_path) as client,
    ):
        core = CoreV1Api(client)
        await make_configmap(core, "a")
        await make_configmap(core, "b")
        sink = Recorder()
        settings = config(sink, namespaces=("default",), resync_period=0.3)
        watcher = Watcher(CONFIGMAPS, KubeResources(client), settings)
        async with running(watcher):
            await sink.wait_until(lambda changes: len(changes) >= 4)
            resyncs = sink.changes[2:4]
            assert {(c.type, c.origin, c.name) for c in resyncs} == {
                (ChangeType.RESYNC, ChangeOrigin.RESYNC, "a"),
                (ChangeType.RESYNC, ChangeOrigin.RESYNC, "b"),
            }
            for change in resyncs:
                assert change.previous is not None
                assert change.resource_version == change.previous["metadata"]["resourceVersion"]


async def test_namespace_scoping_watches_only_the_listed_namespaces() -> None:
    async with (
        serve_apiserver(settings=FAST) as server,
        client_for(server.kubeconfig_path) as client,
    ):
        core = CoreV1Api(client)
        for namespace in ("one", "two", "three"):
            await make_namespace(core, namespace)
            await make_configmap(core, f"in-{namespace}", namespace=namespace)
        sink = Recorder()
        watcher = Watcher(
            CONFIGMAPS, KubeResources(client), config(sink, namespaces=("one", "two"))
        )
        async with running(watcher):
            assert sorted(c.name for c in sink.changes) == ["in-one", "in-two"]
            await make_configmap(core, "late", namespace="three")
            await make_configmap(core, "late", namespace="two")
            await sink.wait_until(lambda changes: len(changes) == 3)
            await asyncio.sleep(0.3)
            assert [(c.namespace, c.name) for c in sink.changes[2:]] == [("two", "late")]
            assert set(watcher.resource_versions) == {"one", "two"}


async def test_label_selector_delivers_only_matching_objects() -> None:
    async with (
        serve_apiserver(settings=FAST) as server,
        client_for(server.kubeconfig_path) as client,
    ):
        core = CoreV1Api(client)
        await make_configmap(core, "web-1", labels={"app": "web"})
        await make_configmap(core, "db-1", labels={"app": "db"})
        sink = Recorder()
        watcher = Watcher(CONFIGMAPS, KubeResources(client), config(sink, label_selector="app=web"))
        async with running(watcher):
            await make_configmap(core, "db-2", labels={"app": "db"})
            await make_configmap(core, "web-2", labels={"app": "web"})
            await sink.wait_until(lambda changes: len(changes) == 2)
            await asyncio.sleep(0.3)
            assert sink.seen() == [("added", "relist", "web-1"), ("added", "watch", "web-2")]


async def test_sink_failure_redelivers_the_same_change() -> None:
    async with (
        serve_apiserver(settings=FAST) as server,
        client_for(server.kubeconfig_path) as client,
    ):
        core = CoreV1Api(client)
        attempts: list[str] = []
        sink = Recorder()

        async def flaky(change: Change) -> None:
            attempts.append(change.name)
            if change.name == "poison" and attempts.count("poison") == 1:
                raise RuntimeError("journal unavailable")
            await sink(change)

        watcher = Watcher(CONFIGMAPS, KubeResources(client), config(flaky))
        async with running(watcher):
            await make_configmap(core, "poison")
            await make_configmap(core, "after")
            await sink.wait_until(lambda changes: len(changes) == 2)
            assert sink.seen() == [("added", "watch", "poison"), ("added", "watch", "after")]
            assert attempts == ["poison", "poison", "after"]
            assert watcher.restarts == {RestartReason.SINK_FAILED: 1}


async def test_silent_watch_is_restarted_by_the_inactivity_watchdog() -> None:
    async with (
        serve_apiserver(settings=Settings(bookmark_interval=60.0)) as server,
        client_for(server.kubeconfig_path) as client,
    ):
        core = CoreV1Api(client)
        sink = Recorder()
        restarts: list[RestartReason] = []
        settings = config(
            sink, inactivity_limit=0.4, on_restart=lambda kind, reason: restarts.append(reason)
        )
        watcher = Watcher(CONFIGMAPS, KubeResources(client), settings)
        async with running(watcher):
            await eventually(lambda: RestartReason.INACTIVE in restarts)
            await make_configmap(core, "after-restart")
            await sink.wait_until(lambda changes: len(changes) == 1)
            assert sink.seen() == [("added", "watch", "after-restart")]
            assert watcher.restarts[RestartReason.INACTIVE] >= 1


async def test_server_restart_on_the_same_db_resumes_without_losing_or_repeating(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "api.db")
    sink = Recorder()
    async with serve_apiserver(db=db, settings=FAST) as first:
        port = first.port
        client = await connect_kubeconfig(first.kubeconfig_path)
        core = CoreV1Api(client)
        await make_configmap(core, "a")
        await make_configmap(core, "b")
        watcher = Watcher(CONFIGMAPS, KubeResources(client), config(sink, namespaces=("default",)))
        task = asyncio.create_task(watcher.run())
        await asyncio.wait_for(watcher.synced.wait(), 5)
        await change_configmap(core, "a", "2")
        await sink.wait_until(lambda changes: len(changes) == 3)
    try:
        async with serve_apiserver(db=db, port=port, settings=FAST):
            await make_configmap(core, "c")
            await core.delete_namespaced_config_map("b", "default")
            await sink.wait_until(lambda changes: len(changes) == 5)
            await make_configmap(core, "d")
            await sink.wait_until(lambda changes: len(changes) == 6)
            await asyncio.sleep(0.3)
            assert sink.seen(skip=2) == [
                ("modified", "watch", "a"),
                ("added", "watch", "c"),
                ("deleted", "watch", "b"),
                ("added", "watch", "d"),
            ]
            assert RestartReason.EXPIRED not in watcher.restarts
            assert sum(watcher.restarts.values()) >= 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


async def test_compacted_history_gives_one_relist_with_only_real_differences(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "api.db")
    tight = Settings(bookmark_interval=0.2, retention=5)
    sink = Recorder()
    async with serve_apiserver(db=db, settings=tight) as first:
        port = first.port
        client = await connect_kubeconfig(first.kubeconfig_path)
        core = CoreV1Api(client)
        for name in ("a", "b", "c"):
            await make_configmap(core, name)
        slow_reconnect = BackoffPolicy(initial=3.0, cap=3.0, jitter=0.0)
        settings = config(sink, namespaces=("default",), backoff=slow_reconnect)
        watcher = Watcher(CONFIGMAPS, KubeResources(client), settings)
        task = asyncio.create_task(watcher.run())
        await asyncio.wait_for(watcher.synced.wait(), 5)
    try:
        # While the watcher waits to reconnect, history moves past its resume point.
        async with serve_apiserver(db=db, port=port, settings=tight):
            await change_configmap(core, "a", "2")
            await core.delete_namespaced_config_map("b", "default")
            await make_configmap(core, "d")
            for index in range(6):
                await make_configmap(core, f"noise-{index}", namespace="kube-system")
            await sink.wait_until(lambda changes: len(changes) == 6, seconds=10)
            await asyncio.sleep(0.3)
            assert sink.seen(skip=3) == [
                ("modified", "relist", "a"),
                ("added", "relist", "d"),
                ("deleted", "relist", "b"),
            ]
            assert watcher.restarts.get(RestartReason.EXPIRED) == 1
            assert [o["metadata"]["name"] for o in watcher.cache.objects()] == ["a", "c", "d"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


@pytest.mark.parametrize("group", ["example.dev"])
async def test_custom_resources_are_listed_and_watched(group: str) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    from kubernetes_asyncio.client import ApiextensionsV1Api, CustomObjectsApi

    async with (
        serve_apiserver(settings=FAST) as server,
        client_for(server.kubeconfig_path) as client,
    ):
        await ApiextensionsV1Api(client).create_custom_resource_definition(crd)
        objects = CustomObjectsApi(client)
        body = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 1},
        }
        await objects.create_namespaced_custom_object(group, "v1", "default", "widgets", body)
        sink = Recorder()
        widgets = Kind(group, "v1", "widgets", "Widget", namespaced=True)
        watcher = Watcher(widgets, KubeResources(client), config(sink))
        async with running(watcher):
            body2 = {**body, "metadata": {"name": "w2"}}
            await objects.create_namespaced_custom_object(group, "v1", "default", "widgets", body2)
            await sink.wait_until(lambda changes: len(changes) == 2)
            assert sink.seen() == [("added", "relist", "w1"), ("added", "watch", "w2")]
            assert sink.changes[1].obj["spec"] == {"size": 1}
