"""B.2 A2c, A4a/c/e and A6b: the watcher over real HTTP, through the fault proxy, against
the embedded API server. Lists and watches answered 500, 503 or 504 are retried with a
backoff that grows, and the watcher syncs once they are answered again. A continue
token that expired between two pages of a list (the server's history compacted while
the second page was on its way) costs exactly one fresh list, then a watch from that
list's resourceVersion; a watch the server ends cleanly (EOF) is resumed from the last
delivered resourceVersion, with no relist and nothing lost or delivered twice."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs

from kubernetes_asyncio.client import ApiClient, CoreV1Api

from engine.apiserver.http.embedded import serve_apiserver
from engine.apiserver.store.api_context import Settings
from engine.watchers import (
    BackoffPolicy,
    Change,
    ChangeType,
    Kind,
    KubeResources,
    RestartReason,
    Watcher,
    WatcherConfig,
    connect_kubeconfig,
)
from tests.support.fault_proxy import (
    END_WATCH,
    GATEWAY_TIMEOUT,
    SERVER_ERROR,
    SLOW,
    UNAVAILABLE,
    FaultProxy,
    FaultSettings,
    serve_fault_proxy,
)

CONFIGMAPS = Kind("", "v1", "configmaps", "ConfigMap", namespaced=True)
PATH = "/api/v1/namespaces/default/configmaps"


@contextlib.asynccontextmanager
async def _through_proxy(
    settings: Settings, faults: FaultSettings
) -> AsyncIterator[tuple[FaultProxy, ApiClient, CoreV1Api]]:
    """The embedded server, the proxy to it, a client through the proxy and one straight
    to the server (the test's own writes)."""
    async with (
        serve_apiserver(settings=settings) as server,
        serve_fault_proxy(server.url, faults) as proxy,
    ):
        direct = await connect_kubeconfig(server.kubeconfig_path)
        through = await connect_kubeconfig(server.kubeconfig_path)
        through.configuration.host = proxy.url
        try:
            yield proxy, through, CoreV1Api(direct)
        finally:
            await through.close()
            await direct.close()


@contextlib.asynccontextmanager
async def _watching(
    client: ApiClient, changes: list[Change], **config: object
) -> AsyncIterator[Watcher]:
    async def sink(change: Change) -> None:
        changes.append(change)

    settings: dict[str, object] = {
        "sink": sink,
        "namespaces": ("default",),
        "backoff": BackoffPolicy(initial=0.1, cap=0.5, jitter=0.0),
        "request_timeout": 5.0,
        **config,
    }
    watcher = Watcher(CONFIGMAPS, KubeResources(client), WatcherConfig(**settings))  # type: ignore[arg-type]
    task = asyncio.create_task(watcher.run())
    try:
        yield watcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _until(check: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        await asyncio.sleep(0.02)


async def _make(core: CoreV1Api, name: str) -> str:
    made = await core.create_namespaced_config_map(
        "default", {"metadata": {"name": name}, "data": {"v": "1"}}
    )
    return str(made.metadata.resource_version)


def _queries(proxy: FaultProxy, *, watch: bool) -> list[dict[str, list[str]]]:
    return [parse_qs(r.query) for r in proxy.seen("GET", PATH) if r.watch == watch]


async def test_a_continue_token_expired_between_pages_costs_one_fresh_list_then_a_watch() -> None:
    # history of 5 revisions: the writes made while page 2 is held compact past its token
    tight = Settings(retention=5)
    held = FaultSettings(
        rate=1.0, kinds=(SLOW,), slow_seconds=0.4, query_contains="continue=", limit=1
    )
    changes: list[Change] = []
    async with _through_proxy(tight, held) as (proxy, client, core):
        for name in ("a", "b", "c"):
            await _make(core, name)
        async with _watching(client, changes, page_size=2) as watcher:
            await _until(lambda: len(_queries(proxy, watch=False)) == 2, "page 2 is asked for")
            late = [await _make(core, f"late-{index}") for index in range(6)]
            await asyncio.wait_for(watcher.synced.wait(), 5)
            listed = watcher.resource_versions["default"]
            await _until(lambda: len(_queries(proxy, watch=True)) == 1, "a watch starts")
            await _make(core, "after")
            await _until(lambda: any(c.name == "after" for c in changes), "a change after")

            lists = _queries(proxy, watch=False)
            pages = [bool(q.get("continue")) for q in lists]
            # the first list: page 1, page 2 refused (410); then one fresh list, 5 pages
            assert pages == [False, True, False, True, True, True, True], pages
            assert watcher.restarts == {RestartReason.EXPIRED: 1}
            names = [c.name for c in changes]
            assert sorted(names[:-1]) == sorted(["a", "b", "c", *[f"late-{i}" for i in range(6)]])
            assert len(set(names)) == len(names), "each object delivered once"
            assert all(c.type is ChangeType.ADDED for c in changes)
            [watch] = _queries(proxy, watch=True)
            # the watch starts from the fresh list's resourceVersion, which saw every write
            assert watch["resourceVersion"] == [listed]
            assert int(listed) >= int(late[-1])


async def test_a_watch_ended_cleanly_resumes_from_the_last_delivered_version() -> None:
    ended = FaultSettings(
        watch_rate=1.0, kinds=(END_WATCH,), cut_after_lines=2, limit=1, path_contains=PATH
    )
    changes: list[Change] = []
    async with (
        _through_proxy(Settings(), ended) as (proxy, client, core),
        _watching(client, changes) as watcher,
    ):
        await asyncio.wait_for(watcher.synced.wait(), 5)
        await _until(lambda: len(_queries(proxy, watch=True)) == 1, "a watch starts")
        versions = [await _make(core, f"m{n}") for n in range(4)]
        await _until(lambda: len(changes) >= 4, "four changes delivered")
        await asyncio.sleep(0.2)  # anything delivered twice would arrive by now

        assert [c.name for c in changes] == ["m0", "m1", "m2", "m3"]
        assert [c.type for c in changes] == [ChangeType.ADDED] * 4
        watches = _queries(proxy, watch=True)
        assert len(watches) == 2, "one reconnect"
        # the second watch resumes at the last event the first one delivered
        assert watches[1]["resourceVersion"] == [versions[1]]
        assert len(_queries(proxy, watch=False)) == 1, "no relist"
        assert watcher.restarts == {}, "a clean end is not a failure"
        assert proxy.kinds_injected() == {END_WATCH}


async def test_reads_answered_500_503_or_504_are_retried_with_growing_backoff_then_sync() -> None:
    failing = FaultSettings(
        rate=1.0, kinds=(SERVER_ERROR, UNAVAILABLE, GATEWAY_TIMEOUT), seed=4, methods=("GET",)
    )
    changes: list[Change] = []
    async with _through_proxy(Settings(), failing) as (proxy, client, core):
        await _make(core, "r0")
        backoff = BackoffPolicy(initial=0.01, cap=0.2, factor=2.0, jitter=1.0)
        async with _watching(client, changes, backoff=backoff) as watcher:
            await asyncio.sleep(0.5)
            assert not watcher.synced.is_set(), "nothing listed while every read fails"
            tries = [r.at for r in proxy.seen("GET", PATH)]
            proxy.settings = FaultSettings()
            await asyncio.wait_for(watcher.synced.wait(), 5)
            await _make(core, "r1")
            await _until(lambda: [c.name for c in changes] == ["r0", "r1"], "r0 then r1")

            assert proxy.kinds_injected() == {SERVER_ERROR, UNAVAILABLE, GATEWAY_TIMEOUT}
            assert watcher.restarts == {RestartReason.SERVER_ERROR: len(tries)}
            # 0.01 s doubling (each delay up to twice its base) to the 0.2 s cap: about
            # six tries in 0.5 s, where a retry without backoff makes hundreds
            assert 3 <= len(tries) <= 8, len(tries)
            gaps = [later - earlier for earlier, later in itertools.pairwise(tries)]
            uncapped = [gap for gap in gaps if gap < backoff.cap]
            # delay n is within [base·2^n, 2·base·2^n]: never shorter than the one before
            assert all(b >= a * 0.9 for a, b in itertools.pairwise(uncapped)), gaps
            assert gaps[-1] >= 4 * gaps[0], gaps
