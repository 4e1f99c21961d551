"""The watcher against a scripted HTTP server that answers what the embedded server never
does on its own: malformed lines, events of another kind, 429/503 with Retry-After, 410 as
an HTTP status. The client is the real kubernetes-asyncio one; only the server is scripted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio.client import ApiClient

from engine.watchers import (
    BackoffPolicy,
    Change,
    ClusterConfigError,
    ClusterUnreachableError,
    Kind,
    KubeResources,
    RestartReason,
    Watcher,
    WatcherConfig,
    connect_kubeconfig,
)

CONFIGMAPS = Kind("", "v1", "configmaps", "ConfigMap", namespaced=True)
PATH = "/api/v1/namespaces/default/configmaps"


def configmap(name: str, rv: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": rv, "uid": name},
    }


def event(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status with headers and a body (a list) or lines (a watch)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    lines: tuple[bytes, ...] = ()


def listing(rv: str, *items: dict[str, Any]) -> Reply:
    return Reply(
        body={"kind": "ConfigMapList", "metadata": {"resourceVersion": rv}, "items": list(items)}
    )


def failure(code: int, reason: str, headers: dict[str, str] | None = None) -> Reply:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
    }
    return Reply(status=code, headers=headers or {}, body=status)


class ScriptedApi:
    """Answers LISTs and WATCHes from two scripts; once a script runs out, a list repeats its
    last reply and a watch stays open and silent. Records (monotonic time, query) per call."""

    def __init__(self, lists: list[Reply], watches: list[Reply]) -> None:
        self.lists, self.watches = lists, watches
        self.list_calls: list[tuple[float, dict[str, str]]] = []
        self.watch_calls: list[tuple[float, dict[str, str]]] = []
        self.called = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        is_watch = query.get("watch") == "true"
        calls, script = (
            (self.watch_calls, self.watches) if is_watch else (self.list_calls, self.lists)
        )
        calls.append((time.monotonic(), query))
        self.called.set()
        if is_watch and len(calls) > len(script):
            reply = Reply()
        else:
            reply = script[min(len(calls), len(script)) - 1]
        if reply.body is not None or reply.status != 200:
            return web.json_response(reply.body or {}, status=reply.status, headers=reply.headers)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for line in reply.lines:
            await response.write(line)
        await asyncio.sleep(3600)
        return response

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "32"})


@contextlib.asynccontextmanager
async def scripted(api: ScriptedApi, tmp_path: Path) -> AsyncIterator[ApiClient]:
    app = web.Application()
    app.router.add_get(PATH, api.handle)
    app.router.add_get("/version", api.version)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    client = await connect_kubeconfig(kubeconfig)
    try:
        yield client
    finally:
        await client.close()
        await runner.cleanup()


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: s, cluster: {{server: '{server}'}}}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: c, context: {cluster: s, user: u}}]\n"
    )
    return path


class Recorder:
    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.arrived = asyncio.Condition()

    async def __call__(self, change: Change) -> None:
        async with self.arrived:
            self.changes.append(change)
            self.arrived.notify_all()

    async def wait_for_count(self, count: int, seconds: float = 5.0) -> None:
        async with asyncio.timeout(seconds), self.arrived:
            await self.arrived.wait_for(lambda: len(self.changes) >= count)


@contextlib.asynccontextmanager
async def watching(client: ApiClient, sink: Recorder, **overrides: Any) -> AsyncIterator[Watcher]:
    settings: dict[str, Any] = {
        "namespaces": ("default",),
        "backoff": BackoffPolicy(initial=0.05, cap=0.2, jitter=0.0),
        "request_timeout": 5.0,
    }
    settings.update(overrides)
    watcher = Watcher(CONFIGMAPS, KubeResources(client), WatcherConfig(sink=sink, **settings))
    task = asyncio.create_task(watcher.run())
    try:
        yield watcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():  # noqa: ASYNC110 - polling a recorded call list
            await asyncio.sleep(0.02)


async def test_bad_lines_are_skipped_and_the_stream_survives(tmp_path: Path) -> None:
    lines = (
        b"{this is not json\n",
        event("ADDED", {**configmap("other", "11"), "apiVersion": "v2"}),
        event("ADDED", {**configmap("other", "12"), "kind": "Secret"}),
        event("UPSERTED", configmap("x", "13")),
        event("BOOKMARK", {"kind": "ConfigMap", "metadata": {"resourceVersion": "14"}}),
        event("ADDED", configmap("good", "15")),
    )
    api = ScriptedApi([listing("10")], [Reply(lines=lines)])
    sink = Recorder()
    async with scripted(api, tmp_path) as client, watching(client, sink) as watcher:
        await sink.wait_for_count(1)
        assert [(c.type.value, c.name) for c in sink.changes] == [("added", "good")]
        assert watcher.skipped_lines == 4
        assert watcher.resource_versions["default"] == "15"
        assert watcher.restarts == {}
        assert len(api.watch_calls) == 1


async def test_watch_start_410_relists_exactly_once_then_watches_from_the_new_version(
    tmp_path: Path,
) -> None:
    api = ScriptedApi(
        [
            listing("10", configmap("a", "5")),
            listing("20", configmap("a", "5"), configmap("b", "19")),
        ],
        [failure(410, "Expired"), Reply(lines=(event("ADDED", configmap("c", "21")),))],
    )
    sink = Recorder()
    async with scripted(api, tmp_path) as client, watching(client, sink) as watcher:
        await sink.wait_for_count(3)
        assert [(c.type.value, c.origin.value, c.name) for c in sink.changes] == [
            ("added", "relist", "a"),
            ("added", "relist", "b"),
            ("added", "watch", "c"),
        ]
        assert len(api.list_calls) == 2
        assert [query["resourceVersion"] for _, query in api.watch_calls] == ["10", "20"]
        assert watcher.restarts == {RestartReason.EXPIRED: 1}


async def test_in_stream_410_relists_exactly_once(tmp_path: Path) -> None:
    expired = {
        "kind": "Status",
        "code": 410,
        "reason": "Expired",
        "message": "too old resource version",
    }
    api = ScriptedApi(
        [listing("10", configmap("a", "5")), listing("30")],
        [Reply(lines=(event("ERROR", expired),))],
    )
    sink = Recorder()
    async with scripted(api, tmp_path) as client, watching(client, sink) as watcher:
        await sink.wait_for_count(2)
        await until(lambda: len(api.watch_calls) == 2)
        assert [(c.type.value, c.origin.value, c.name) for c in sink.changes] == [
            ("added", "relist", "a"),
            ("deleted", "relist", "a"),
        ]
        assert len(api.list_calls) == 2
        assert api.watch_calls[1][1]["resourceVersion"] == "30"
        assert watcher.restarts == {RestartReason.EXPIRED: 1}


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        pytest.param(
            failure(429, "TooManyRequests", {"Retry-After": "1"}), RestartReason.THROTTLED, id="429"
        ),
        pytest.param(
            failure(503, "ServiceUnavailable", {"Retry-After": "1"}),
            RestartReason.SERVER_ERROR,
            id="503",
        ),
    ],
)
async def test_retry_after_on_watch_start_is_waited_before_retrying(
    tmp_path: Path, reply: Reply, reason: RestartReason
) -> None:
    api = ScriptedApi(
        [listing("10")], [reply, Reply(lines=(event("ADDED", configmap("a", "11")),))]
    )
    sink = Recorder()
    async with scripted(api, tmp_path) as client, watching(client, sink) as watcher:
        await sink.wait_for_count(1)
        first, second = api.watch_calls[0][0], api.watch_calls[1][0]
        assert second - first >= 1.0
        assert watcher.restarts == {reason: 1}
        assert api.watch_calls[1][1]["resourceVersion"] == "10"


async def test_retry_after_beyond_the_cap_is_capped(tmp_path: Path) -> None:
    api = ScriptedApi(
        [
            failure(429, "TooManyRequests", {"Retry-After": "3600"}),
            listing("10", configmap("a", "9")),
        ],
        [],
    )
    sink = Recorder()
    async with (
        scripted(api, tmp_path) as client,
        watching(client, sink, retry_after_cap=0.2) as watcher,
    ):
        await asyncio.wait_for(watcher.synced.wait(), 5)
        assert [c.name for c in sink.changes] == ["a"]
        assert watcher.restarts == {RestartReason.THROTTLED: 1}


async def test_a_list_is_paged_with_continue_tokens(tmp_path: Path) -> None:
    first = Reply(
        body={
            "metadata": {"resourceVersion": "10", "continue": "next"},
            "items": [configmap("a", "3")],
        }
    )
    api = ScriptedApi([first, listing("10", configmap("b", "4"))], [])
    sink = Recorder()
    async with scripted(api, tmp_path) as client, watching(client, sink, page_size=1) as watcher:
        await asyncio.wait_for(watcher.synced.wait(), 5)
        assert [c.name for c in sink.changes] == ["a", "b"]
        assert [query.get("continue") for _, query in api.list_calls] == [None, "next"]
        assert api.list_calls[0][1]["limit"] == "1"


async def test_missing_kubeconfig_is_a_clear_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ClusterConfigError, match=f"kubeconfig {missing} does not exist"):
        await connect_kubeconfig(missing)


async def test_unusable_kubeconfig_is_a_clear_config_error(tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\ncurrent-context: missing\n")
    with pytest.raises(ClusterConfigError, match=f"kubeconfig {broken} cannot be used"):
        await connect_kubeconfig(broken)


async def test_unreachable_server_is_a_clear_error_naming_the_url(tmp_path: Path) -> None:
    runner = web.AppRunner(web.Application())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    await runner.cleanup()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    with pytest.raises(ClusterUnreachableError, match=f"http://127.0.0.1:{port}"):
        await connect_kubeconfig(kubeconfig, probe_timeout=2.0)
