"""The fault proxy: the real kubernetes-asyncio client through it to the embedded API
server receives each fault kind, and everything else (watches too) is forwarded."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from engine.apiserver.http.embedded import serve_apiserver
from tests.support.fault_proxy import (
    CONFLICT,
    CUT_WATCH,
    RESET,
    SERVER_ERROR,
    SLOW,
    THROTTLE,
    FaultPlan,
    FaultProxy,
    FaultSettings,
    serve_fault_proxy,
)

NAMESPACE = "default"


@asynccontextmanager
async def through_proxy() -> AsyncIterator[tuple[FaultProxy, client.CoreV1Api]]:
    async with serve_apiserver() as server, serve_fault_proxy(server.url) as proxy:
        configuration = client.Configuration()
        configuration.host = proxy.url
        async with client.ApiClient(configuration) as api:
            yield proxy, client.CoreV1Api(api)


def configmap(name: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "data": {"k": "v"}}


async def watched_names(core: client.CoreV1Api) -> list[str]:
    names = []
    async with watch.Watch() as stream:
        async for event in stream.stream(
            core.list_namespaced_config_map, NAMESPACE, resource_version="0", timeout_seconds=1
        ):
            names.append(event["object"].metadata.name)
    return names


async def watch_into(names: list[str], core: client.CoreV1Api) -> None:
    """Append the names a watch from the start delivers, until the stream ends or breaks."""
    async with watch.Watch() as stream:
        async for event in stream.stream(
            core.list_namespaced_config_map, NAMESPACE, resource_version="0"
        ):
            names.append(event["object"].metadata.name)


async def test_requests_and_watches_pass_through_untouched_without_faults() -> None:
    async with through_proxy() as (proxy, core):
        for name in ("c0", "c1", "c2"):
            await core.create_namespaced_config_map(NAMESPACE, configmap(name))
        listed = await core.list_namespaced_config_map(NAMESPACE)
        assert [c.metadata.name for c in listed.items] == ["c0", "c1", "c2"]
        assert await watched_names(core) == ["c0", "c1", "c2"]
        assert proxy.injected == []
        assert proxy.forwarded == 5


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        pytest.param(CONFLICT, 409, id="conflict"),
        pytest.param(THROTTLE, 429, id="throttle"),
        pytest.param(SERVER_ERROR, 500, id="server-error"),
    ],
)
async def test_status_faults_reach_the_client_as_api_errors(kind: str, status: int) -> None:
    async with through_proxy() as (proxy, core):
        proxy.settings = FaultSettings(rate=1.0, kinds=(kind,), retry_after=3)
        with pytest.raises(ApiException) as raised:
            await core.create_namespaced_config_map(NAMESPACE, configmap("c"))
        assert raised.value.status == status
        if kind == THROTTLE:
            assert raised.value.headers["Retry-After"] == "3"
        proxy.settings = FaultSettings()
        listed = await core.list_namespaced_config_map(NAMESPACE)
        assert listed.items == [], "the faulted write never reached the server"


async def test_a_reset_fails_the_request_with_a_connection_error() -> None:
    async with through_proxy() as (proxy, core):
        proxy.settings = FaultSettings(rate=1.0, kinds=(RESET,))
        with pytest.raises(aiohttp.ClientConnectionError):
            await core.list_namespaced_config_map(NAMESPACE)
        assert proxy.kinds_injected() == {RESET}


async def test_a_cut_watch_delivers_the_first_lines_then_breaks() -> None:
    async with through_proxy() as (proxy, core):
        for name in ("c0", "c1", "c2"):
            await core.create_namespaced_config_map(NAMESPACE, configmap(name))
        proxy.settings = FaultSettings(rate=1.0, kinds=(CUT_WATCH,), cut_after_lines=2)
        names: list[str] = []
        with pytest.raises(aiohttp.ClientPayloadError):
            await watch_into(names, core)
        assert names == ["c0", "c1"]
        assert proxy.kinds_injected() == {CUT_WATCH}


async def test_a_slow_response_arrives_late_but_intact() -> None:
    async with through_proxy() as (proxy, core):
        proxy.settings = FaultSettings(rate=1.0, kinds=(SLOW,), slow_seconds=0.3)
        start = time.monotonic()
        created = await core.create_namespaced_config_map(NAMESPACE, configmap("c"))
        assert time.monotonic() - start >= 0.3
        assert created.metadata.name == "c"
        assert proxy.kinds_injected() == {SLOW}


async def test_a_partial_rate_faults_some_requests_and_forwards_the_rest() -> None:
    kinds = (CONFLICT, THROTTLE, SERVER_ERROR, RESET, SLOW)
    async with through_proxy() as (proxy, core):
        proxy.settings = FaultSettings(rate=0.3, kinds=kinds, seed=11, slow_seconds=0.01)
        failures = 0
        for _ in range(40):
            try:
                await core.list_namespaced_config_map(NAMESPACE)
            except (ApiException, aiohttp.ClientError):
                failures += 1
        refused = sum(1 for fault in proxy.injected if fault.kind != SLOW)
        # aiohttp repeats an idempotent request once when a reused connection is reset,
        # so a reset may be absorbed: never more failures than refusals
        resets = sum(1 for fault in proxy.injected if fault.kind == RESET)
        assert refused - resets <= failures <= refused
        assert 0 < failures < 40
        assert proxy.forwarded == 40 - failures, "each success forwarded once"


def test_the_same_seed_gives_the_same_faults() -> None:
    settings = FaultSettings(rate=0.5, seed=3)

    def decisions() -> list[str | None]:
        plan = FaultPlan(settings)
        return [plan.choose("GET", "/api/v1/pods", watch=i % 3 == 0) for i in range(200)]

    first = decisions()
    assert first == decisions()
    assert set(first) == {None, CONFLICT, THROTTLE, SERVER_ERROR, RESET, SLOW, CUT_WATCH}
    assert all(kind in (None, CUT_WATCH) for kind in first[::3]), "watches get cut only"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"rate": 1.5}, "within 0..1", id="rate"),
        pytest.param({"kinds": ("flood",)}, "unknown fault kinds", id="kind"),
    ],
)
def test_bad_fault_settings_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultSettings(**options)  # type: ignore[arg-type]
