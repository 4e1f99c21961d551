"""The health endpoints over real HTTP on 127.0.0.1: status codes, fixed bodies, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from multidict import CIMultiDictProxy
from prometheus_client import CollectorRegistry, Counter

from engine.runtime.manager.health import Check, HealthDependencies, HealthServer


class Switch:
    """A probe whose answer the test flips."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def __call__(self) -> bool:
        return self.value


def broken_probe() -> bool:
    raise RuntimeError("secret-canary-7f3 in ns/app-1 failed")


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    counter = Counter("engine_reconciles", "Reconciles run", ["outcome"], registry=registry)
    counter.labels(outcome="succeeded").inc(3)
    return registry


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def fetch(
    http: aiohttp.ClientSession, method: str, url: str, **options: object
) -> tuple[int, str, CIMultiDictProxy[str]]:
    async with http.request(method, url, **options) as response:  # type: ignore[arg-type]
        return response.status, await response.text(), response.headers


async def test_healthz_and_readyz_follow_their_checks(
    registry: CollectorRegistry, http: aiohttp.ClientSession
) -> None:
    alive, ready = Switch(True), Switch(False)
    dependencies = HealthDependencies(
        registry=registry,
        liveness=(Check("event-loop", alive),),
        readiness=(Check("journal", ready), Check("always", lambda: True)),
    )
    async with HealthServer(dependencies, host="127.0.0.1", port=0) as server:
        assert server.port != 0
        status, body, _ = await fetch(http, "GET", f"{server.url}/healthz")
        assert (status, body) == (200, "ok\n")
        status, body, _ = await fetch(http, "GET", f"{server.url}/readyz")
        assert (status, body) == (503, "unavailable: journal\n")  # the failing check's name
        ready.value, alive.value = True, False
        status, body, _ = await fetch(http, "GET", f"{server.url}/readyz")
        assert (status, body) == (200, "ok\n")
        status, body, _ = await fetch(http, "GET", f"{server.url}/healthz")
        assert (status, body) == (503, "unavailable\n")


async def test_no_checks_means_healthy(
    registry: CollectorRegistry, http: aiohttp.ClientSession
) -> None:
    async with HealthServer(HealthDependencies(registry), host="127.0.0.1", port=0) as server:
        for path in ("/healthz", "/readyz"):
            status, body, _ = await fetch(http, "GET", server.url + path)
            assert (status, body) == (200, "ok\n")


async def test_a_raising_check_fails_without_leaking_its_message(
    registry: CollectorRegistry, http: aiohttp.ClientSession
) -> None:
    dependencies = HealthDependencies(registry, liveness=(Check("broken", broken_probe),))
    async with HealthServer(dependencies, host="127.0.0.1", port=0) as server:
        status, body, headers = await fetch(http, "GET", f"{server.url}/healthz")
    assert status == 503
    assert body == "unavailable\n"
    assert "canary" not in body
    assert "Server" not in headers


async def test_metrics_serves_the_registry_as_prometheus_text(
    registry: CollectorRegistry, http: aiohttp.ClientSession
) -> None:
    async with HealthServer(HealthDependencies(registry), host="127.0.0.1", port=0) as server:
        status, body, headers = await fetch(http, "GET", f"{server.url}/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert 'engine_reconciles_total{outcome="succeeded"} 3.0' in body
    assert "# TYPE engine_reconciles_total counter" in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD"])
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_methods_other_than_get_are_refused(
    registry: CollectorRegistry, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    async with HealthServer(HealthDependencies(registry), host="127.0.0.1", port=0) as server:
        status, body, headers = await fetch(http, method, server.url + path)
    assert status == 405
    assert headers["Allow"] == "GET"
    if method != "HEAD":
        assert body == "method not allowed\n"


@pytest.mark.parametrize("path", ["/", "/debug/pprof", "/healthz/extra", "/metrics.json"])
async def test_nothing_else_is_served(
    registry: CollectorRegistry, http: aiohttp.ClientSession, path: str
) -> None:
    async with HealthServer(HealthDependencies(registry), host="127.0.0.1", port=0) as server:
        status, body, _ = await fetch(http, "GET", server.url + path)
    assert (status, body) == (404, "not found\n")


async def test_oversized_request_is_rejected(
    registry: CollectorRegistry, http: aiohttp.ClientSession
) -> None:
    async with HealthServer(HealthDependencies(registry), host="127.0.0.1", port=0) as server:
        status, body, _ = await fetch(http, "GET", f"{server.url}/healthz", data=b"x" * 100_000)
    assert (status, body) == (413, "too large\n")


async def test_server_stops_listening_when_the_block_ends(registry: CollectorRegistry) -> None:
    async with HealthServer(HealthDependencies(registry), host="127.0.0.1", port=0) as server:
        url = f"{server.url}/healthz"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(url)
