"""The example registry service over real HTTP: idempotent replay, fencing, faults, restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from engine.example.registry_client import (
    PermanentRegistryError,
    RegistryClient,
    RetryableRegistryError,
    StaleTermError,
    parse_retry_after,
)
from engine.example.registry_service import Faults, RunningRegistry, serve_registry


@pytest.fixture
async def registry() -> AsyncIterator[RunningRegistry]:
    async with serve_registry() as running:
        yield running


@pytest.fixture
async def client(registry: RunningRegistry) -> AsyncIterator[RegistryClient]:
    async with RegistryClient(registry.url) as client:
        yield client


async def outcomes(client: RegistryClient) -> list[str]:
    return [call["outcome"] for call in await client.calls()]


async def test_replayed_key_returns_the_first_result_and_applies_once(
    client: RegistryClient,
) -> None:
    first = await client.register("db-1", {"size": 1}, idempotency_key="u1:1:register", term=1)
    again = await client.register("db-1", {"size": 1}, idempotency_key="u1:1:register", term=1)
    assert again == first
    assert first.revision == 1
    assert await client.applied() == {"u1:1:register": 1}
    assert await outcomes(client) == ["applied", "replayed"]
    newer = await client.register("db-1", {"size": 2}, idempotency_key="u1:2:register", term=1)
    assert newer.revision == 2
    assert [item.spec for item in await client.registrations()] == [{"size": 2}]


async def test_replay_after_a_newer_write_still_answers_the_recorded_result(
    client: RegistryClient,
) -> None:
    await client.register("a", {"v": 1}, idempotency_key="k1", term=1)
    await client.register("a", {"v": 2}, idempotency_key="k2", term=1)
    old = await client.register("a", {"v": 1}, idempotency_key="k1", term=1)
    assert old.spec == {"v": 1}
    assert (await client.registrations())[0].spec == {"v": 2}  # not applied again


async def test_key_reused_for_another_request_is_a_permanent_error(
    client: RegistryClient,
) -> None:
    await client.register("a", {"v": 1}, idempotency_key="k1", term=1)
    with pytest.raises(PermanentRegistryError, match="different request") as caught:
        await client.register("a", {"v": 9}, idempotency_key="k1", term=1)
    assert caught.value.status == 422
    assert await client.applied() == {"k1": 1}


async def test_stale_term_is_rejected_and_not_applied(client: RegistryClient) -> None:
    await client.register("a", {"v": 1}, idempotency_key="k1", term=5)
    await client.register("a", {"v": 2}, idempotency_key="k2", term=5)  # equal term is fine
    with pytest.raises(StaleTermError, match="stale"):
        await client.register("a", {"v": 3}, idempotency_key="k3", term=4)
    with pytest.raises(StaleTermError):
        await client.unregister("a", idempotency_key="k4", term=4)
    assert (await client.registrations())[0].spec == {"v": 2}
    assert await client.applied() == {"k1": 1, "k2": 1}
    calls = await client.calls()
    assert [(call["term"], call["outcome"]) for call in calls[-2:]] == [(4, "stale"), (4, "stale")]


async def test_stale_term_body_is_clear_json(registry: RunningRegistry) -> None:
    async with aiohttp.ClientSession() as http:
        headers = {"Idempotency-Key": "k1", "X-Fencing-Term": "3"}
        await http.put(f"{registry.url}/registrations/a", json={}, headers=headers)
        headers = {"Idempotency-Key": "k2", "X-Fencing-Term": "2"}
        async with http.put(f"{registry.url}/registrations/a", json={}, headers=headers) as reply:
            assert reply.status == 409
            assert await reply.json() == {
                "error": "stale fencing term",
                "term": 2,
                "highest_term": 3,
            }


async def test_delete_is_idempotent(client: RegistryClient) -> None:
    await client.register("a", {}, idempotency_key="k1", term=1)
    assert await client.unregister("a", idempotency_key="d1", term=1) is True
    assert await client.unregister("a", idempotency_key="d1", term=1) is True  # replayed
    assert await client.unregister("a", idempotency_key="d2", term=1) is False  # already gone
    assert await client.registrations() == []
    assert await client.applied() == {"k1": 1, "d1": 1, "d2": 1}


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        pytest.param({"X-Fencing-Term": "1"}, {}, "Idempotency-Key", id="no-key"),
        pytest.param({"Idempotency-Key": "k"}, {}, "X-Fencing-Term", id="no-term"),
        pytest.param({"Idempotency-Key": "k", "X-Fencing-Term": "-1"}, {}, "X-Fencing-Term",
                     id="negative-term"),
        pytest.param({"Idempotency-Key": "k", "X-Fencing-Term": "1"}, [1], "JSON object",
                     id="body-not-object"),
    ],
)  # fmt: skip
async def test_bad_requests_get_400_with_the_reason(
    registry: RunningRegistry, headers: dict[str, str], body: object, message: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.put(f"{registry.url}/registrations/a", json=body, headers=headers) as reply,
    ):
        assert reply.status == 400
        assert message in (await reply.json())["error"]


async def test_injected_failure_is_retryable_with_retry_after(client: RegistryClient) -> None:
    await client.set_faults(failure_rate=1.0, retry_after_seconds=2.0)
    with pytest.raises(RetryableRegistryError) as caught:
        await client.register("a", {}, idempotency_key="k1", term=1)
    assert caught.value.retry_after == 2.0
    assert await client.applied() == {}
    assert await outcomes(client) == ["unavailable"]
    await client.set_faults(failure_rate=0.0)
    await client.register("a", {}, idempotency_key="k1", term=1)
    assert await client.applied() == {"k1": 1}


async def test_lost_reply_then_retry_with_the_same_key_applies_once(
    client: RegistryClient,
) -> None:
    await client.set_faults(lost_reply_rate=1.0)
    with pytest.raises(RetryableRegistryError, match="503"):
        await client.register("a", {"v": 1}, idempotency_key="k1", term=1)
    assert [item.name for item in await client.registrations()] == ["a"]  # it was applied
    await client.set_faults(lost_reply_rate=0.0)
    result = await client.register("a", {"v": 1}, idempotency_key="k1", term=1)
    assert result.revision == 1
    assert await client.applied() == {"k1": 1}
    calls = await client.calls()
    assert [(call["outcome"], call["reply_lost"]) for call in calls] == [
        ("applied", True),
        ("replayed", False),
    ]


async def test_seeded_failure_rate_gives_the_same_outcomes() -> None:
    async def run(seed: int) -> list[str]:
        async with (
            serve_registry(faults=Faults(failure_rate=0.5), seed=seed) as running,
            RegistryClient(running.url) as client,
        ):
            for number in range(20):
                with contextlib.suppress(RetryableRegistryError):
                    await client.register("a", {}, idempotency_key=f"k{number}", term=1)
            return await outcomes(client)

    first, second = await run(7), await run(7)
    assert first == second
    assert {"applied", "unavailable"} == set(first)


async def test_latency_is_injected(registry: RunningRegistry, client: RegistryClient) -> None:
    await client.set_faults(latency_seconds=0.3)
    started = time.monotonic()
    await client.register("a", {}, idempotency_key="k1", term=1)
    assert time.monotonic() - started >= 0.3


async def test_bad_fault_settings_are_refused(registry: RunningRegistry) -> None:
    async with aiohttp.ClientSession() as http:
        for body in ({"failure_rate": 2}, {"speed": 1}, {"latency_seconds": "slow"}):
            async with http.post(f"{registry.url}/faults", json=body) as reply:
                assert reply.status == 400
                assert "known fields" in (await reply.json())["error"]


async def test_unreachable_service_is_retryable() -> None:
    async with serve_registry() as running:
        url = running.url
    async with RegistryClient(url, timeout_seconds=2.0) as client:
        with pytest.raises(RetryableRegistryError, match="may have been applied"):
            await client.register("a", {}, idempotency_key="k1", term=1)


async def test_state_file_keeps_records_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "registry.json"
    async with serve_registry(state_path=state) as running, RegistryClient(running.url) as client:
        await client.register("a", {"v": 1}, idempotency_key="k1", term=3)
    async with serve_registry(state_path=state) as running, RegistryClient(running.url) as client:
        assert (await client.register("a", {"v": 1}, idempotency_key="k1", term=3)).revision == 1
        assert await client.applied() == {"k1": 1}
        with pytest.raises(StaleTermError):
            await client.register("a", {"v": 2}, idempotency_key="k2", term=2)
        assert await outcomes(client) == ["applied", "replayed", "stale"]


async def test_corrupt_state_file_is_named(tmp_path: Path) -> None:
    state = tmp_path / "registry.json"
    state.write_text("{not json")
    with pytest.raises(ValueError, match=r"registry\.json is not a registry state file"):
        async with serve_registry(state_path=state):
            pass


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param("3", 3.0, id="delta-seconds"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param(None, None, id="absent"),
        pytest.param("soon", None, id="unreadable"),
        pytest.param("Thu, 01 Jan 2026 00:00:10 GMT", 10.0, id="http-date"),
        pytest.param("Thu, 01 Jan 2025 00:00:00 GMT", 0.0, id="date-in-the-past"),
    ],
)
def test_retry_after_header_is_parsed(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=1767225600.0) == seconds  # 2026-01-01T00:00:00Z


def start_service(state: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "example-service", "--port", "0", "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("registry service listening on "), line + process.stderr.read()
    return process, line.rsplit(" ", 1)[1].strip()


def stop_service(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0


async def test_cli_service_survives_a_restart_with_its_state_file(tmp_path: Path) -> None:
    state = tmp_path / "registry.json"
    process, url = await asyncio.to_thread(start_service, state)
    try:
        async with RegistryClient(url) as client:
            await client.register("a", {"v": 1}, idempotency_key="k1", term=2)
    finally:
        await asyncio.to_thread(stop_service, process)
    assert json.loads(state.read_text())["applied"] == {"k1": 1}
    process, url = await asyncio.to_thread(start_service, state)
    try:
        async with RegistryClient(url) as client:
            await client.register("a", {"v": 1}, idempotency_key="k1", term=2)
            assert await client.applied() == {"k1": 1}
            assert await outcomes(client) == ["applied", "replayed"]
    finally:
        await asyncio.to_thread(stop_service, process)


def test_cli_bad_state_file_is_one_clear_line(tmp_path: Path) -> None:
    state = tmp_path / "registry.json"
    state.write_text("[]")
    result = subprocess.run(
        [sys.executable, "-m", "engine", "example-service", "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "registry.json is not a registry state file" in result.stderr
    assert "Traceback" not in result.stderr
