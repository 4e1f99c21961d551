"""Two engine replicas with leader election on one embedded API server (L1, L3, L4, L8):
each a `Controller` with its own journal and its own client over real HTTP, both calling
one effect target that keeps every call (who, key, when) and applies a key once."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from engine.apiserver.http.embedded import RunningApiServer, serve_apiserver
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.operator import CustomResource, Operator
from engine.watchers import connect_kubeconfig
from tests.integration.reconcile_support import (
    GROUP,
    KIND,
    PLURAL,
    SCHEMA,
    VERSION,
    WIDGETS,
    Api,
    eventually,
    fast_settings,
    install_crd,
)
from tests.support.fault_proxy import RESET, FaultSettings, serve_fault_proxy
from tests.support.history import JournalEffects

LEASE_SECONDS, RENEW_SECONDS, RETRY_SECONDS = 1.0, 0.6, 0.2
SAMPLE = 0.005


@dataclass
class Target:
    """The external service both replicas call: every call (who, key, when), and how many
    times each key reached it (`arrived`); like the example registry it applies a key
    once and answers a repeated one from that first call. `unreachable` names the
    replicas cut off from it; `held`, when set, holds every call until it is set."""

    calls: list[tuple[str, str, float]] = field(default_factory=list)
    arrived: Counter[str] = field(default_factory=Counter)
    unreachable: set[str] = field(default_factory=set)
    held: asyncio.Event | None = None
    waiting: list[str] = field(default_factory=list)
    """The keys of the calls being held."""

    async def register(self, replica: str, key: str) -> dict[str, Any]:
        self.calls.append((replica, key, time.monotonic()))
        if replica in self.unreachable:
            raise ConnectionError("the effect target cannot be reached")
        if self.held is not None and not self.held.is_set():
            self.waiting.append(key)
            await self.held.wait()
        self.arrived[key] += 1
        return {"key": key}

    def calls_by(self, replica: str) -> list[tuple[str, float]]:
        return [(key, at) for who, key, at in self.calls if who == replica]


def operator_for(replica: str, target: Target) -> Operator:
    async def provision(ctx: Context) -> None:
        async def register(key: str) -> dict[str, Any]:
            return await target.register(replica, key)

        await ctx.effect("register", register)

    return Operator(
        resource=CustomResource(GROUP, VERSION, KIND, PLURAL, SCHEMA), provision=provision
    )


@dataclass
class Replica:
    name: str
    controller: Controller
    journal_path: Path
    task: asyncio.Task[None]

    @property
    def leads(self) -> bool:
        leadership = self.controller.leadership
        elector = None if leadership is None else leadership.elector
        return elector is not None and elector.is_leader

    @property
    def term(self) -> int | None:
        leadership = self.controller.leadership
        elector = None if leadership is None else leadership.elector
        return None if elector is None else elector.term

    async def stop(self) -> None:
        await self.controller.stop()
        await self.task


def kubeconfig_to(server: RunningApiServer, url: str, path: Path) -> Path:
    """The server's kubeconfig, pointed at `url` (a fault proxy in front of it)."""
    config = yaml.safe_load(server.kubeconfig_path.read_text())
    config["clusters"][0]["cluster"]["server"] = url
    path.write_text(yaml.safe_dump(config))
    return path


@asynccontextmanager
async def replica(
    name: str, kubeconfig: Path, state_dir: Path, target: Target
) -> AsyncIterator[Replica]:
    """One engine replica, leader election on, running (caches synced) for the block."""
    settings = fast_settings(
        state_dir,
        leader_election=True,
        lease_duration_seconds=LEASE_SECONDS,
        lease_renew_deadline_seconds=RENEW_SECONDS,
        lease_retry_period_seconds=RETRY_SECONDS,
        backoff_cap_seconds=0.1,
    )
    client = await connect_kubeconfig(kubeconfig)
    journal = await SqliteJournal.open(state_dir / "journal.db", synchronous="NORMAL")
    controller = Controller(
        ControllerDeps(
            operator=operator_for(name, target),
            settings=settings,
            api_client=client,
            journal=journal,
            handle_signals=False,
        )
    )
    task = asyncio.create_task(controller.run())
    try:
        await asyncio.wait_for(controller.ready.wait(), 15)
        yield Replica(name, controller, state_dir / "journal.db", task)
    finally:
        if not task.done():
            await controller.stop()
        await asyncio.gather(task, return_exceptions=True)
        await journal.close()
        await client.close()


@asynccontextmanager
async def cluster() -> AsyncIterator[tuple[RunningApiServer, Api]]:
    async with serve_apiserver() as server, aiohttp.ClientSession() as session:
        api = Api(session, server.url)
        await install_crd(api, operator_for("-", Target()))
        yield server, api


async def create(api: Api, name: str) -> None:
    await api.create_widget(name, size=1)


async def ready(api: Api, *names: str, within: float = 10.0) -> None:
    async def all_ready() -> bool:
        for name in names:
            widget = await api.get(f"{WIDGETS}/{name}")
            if widget is None or (widget.get("status") or {}).get("phase") != "Ready":
                return False
        return True

    await eventually(all_ready, f"{', '.join(names)} Ready", within=within)


@dataclass
class LeaderLog:
    """When each replica was seen leading (sampled every few ms by `follow`)."""

    seen: dict[str, list[float]] = field(default_factory=dict)
    both: list[float] = field(default_factory=list)

    async def follow(self, *replicas: Replica) -> None:
        while True:
            now, leading = time.monotonic(), [r for r in replicas if r.leads]
            for r in leading:
                self.seen.setdefault(r.name, []).append(now)
            if len(leading) > 1:
                self.both.append(now)
            await asyncio.sleep(SAMPLE)


@asynccontextmanager
async def following(*replicas: Replica) -> AsyncIterator[LeaderLog]:
    log = LeaderLog()
    task = asyncio.create_task(log.follow(*replicas))
    try:
        yield log
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def leading(one: Replica, *, within: float = 5.0) -> None:
    async def leads() -> bool:
        return one.leads

    await eventually(leads, f"{one.name} leads", within=within)


HOLDER = """
import json, sys, time, urllib.error, urllib.request
from datetime import datetime, timezone

url, duration, retry = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
lease = url + "/apis/coordination.k8s.io/v1/namespaces/default/leases/engine-leader"

def call(method, address, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(address, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=retry) as answer:
        return json.load(answer)

def stamp(body):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body["spec"].update(holderIdentity="killed-leader", leaseDurationSeconds=duration,
                        renewTime=now)
    return body

stamp(body := {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "engine-leader", "namespace": "default"},
               "spec": {"leaseTransitions": 1, "acquireTime":
                        datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}})
call("POST", lease.rsplit("/", 1)[0], body)
print("leading", flush=True)
while True:
    time.sleep(retry)
    call("PUT", lease, stamp(call("GET", lease)))
"""
"""A leader as a process of its own that does nothing but hold the Lease: it creates it
and renews it every retry period over plain HTTP until it is killed."""


async def test_a_sigkilled_leader_is_followed_within_lease_duration_plus_retry_period(
    tmp_path: Path,
) -> None:
    """L1: the leader is a process holding the Lease (renewing it every retry period),
    killed by SIGKILL; the standby engine leads within lease duration + retry
    period of the kill (5 ms of sampling slack) and acts on a waiting Widget 0.3 s after
    (one turn: the journal's term, the full pass, the effect)."""
    target = Target()
    async with cluster() as (server, api):
        leader = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            HOLDER,
            server.url,
            str(round(LEASE_SECONDS)),
            str(RETRY_SECONDS),
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert leader.stdout is not None
            assert await asyncio.wait_for(leader.stdout.readline(), 20) == b"leading\n"
            async with replica("b", server.kubeconfig_path, tmp_path / "b", target) as b:
                await create(api, "waiting")
                await asyncio.sleep(3 * RETRY_SECONDS)
                assert not b.leads
                assert target.calls == [], "the standby acted while the other process led"
                async with following(b) as log:
                    leader.kill()
                    killed = time.monotonic()
                    await leader.wait()
                    await ready(api, "waiting", within=LEASE_SECONDS + 5)
                led_in = log.seen["b"][0] - killed
                [(_, acted_at)] = target.calls_by("b")
                acted_in = acted_at - killed
        finally:
            if leader.returncode is None:
                leader.kill()
                await leader.wait()
    promise = LEASE_SECONDS + RETRY_SECONDS
    assert led_in <= promise + SAMPLE, f"led {led_in:.3f} s after the kill; promised {promise}"
    assert acted_in <= promise + 0.3, f"first effect {acted_in:.3f} s after the kill"
    print(f"L1: led {led_in:.3f} s, first effect {acted_in:.3f} s after the SIGKILL")


async def test_a_leader_cut_off_from_the_api_server_makes_no_effect_past_its_renew_deadline(
    tmp_path: Path,
) -> None:
    """L3: the leader's every connection to the API server is reset while it retries an
    effect; it makes no call past its renew deadline, the standby takes over and finishes
    the work under the same idempotency key."""
    target = Target(unreachable={"a"})  # a retries its effect until it is cut off
    async with cluster() as (server, api), serve_fault_proxy(server.url) as proxy:
        through_proxy = kubeconfig_to(server, proxy.url, tmp_path / "proxy-kubeconfig")
        async with replica("a", through_proxy, tmp_path / "a", target) as a:
            await leading(a)
            async with replica("b", server.kubeconfig_path, tmp_path / "b", target) as b:
                await create(api, "cut")

                async def a_retries() -> bool:
                    return len(target.calls_by("a")) >= 3

                await eventually(a_retries, "a retries its effect")
                async with following(a, b) as log:
                    proxy.settings = FaultSettings(rate=1.0, kinds=(RESET,))
                    cut = time.monotonic()
                    await ready(api, "cut", within=LEASE_SECONDS + 5)
                a_calls = target.calls_by("a")
                b_calls = target.calls_by("b")
                assert a.term is not None
                assert b.term is not None
                assert b.term > a.term
    last_a = max(at for _, at in a_calls)
    assert last_a <= cut + RENEW_SECONDS + 0.1, f"a called {last_a - cut:.3f} s after the cut"
    assert log.both == [], "two replicas led at once"
    assert min(at for _, at in b_calls) > last_a, "b acted before a stopped"
    assert {key for key, _ in b_calls} == {key for key, _ in a_calls}, "b used a's key"


async def test_an_unreachable_effect_target_keeps_the_leader_and_a_release_waits_for_effects(
    tmp_path: Path,
) -> None:
    """L4, then L8. The leader alone is cut off from the effect target: it keeps the Lease
    (no transition, the standby never leads) and retries the effect under the same key
    until the target answers. Then a graceful stop while an effect is in flight: the
    effect finishes and is journaled before the Lease is released, and the standby leads
    within two retry periods of the release."""
    target = Target(unreachable={"a"})
    async with (
        cluster() as (server, api),
        replica("a", server.kubeconfig_path, tmp_path / "a", target) as a,
    ):
        await leading(a)
        term = a.term
        async with replica("b", server.kubeconfig_path, tmp_path / "b", target) as b:
            async with following(a, b) as log:
                await create(api, "unreachable")

                async def a_retried() -> bool:
                    return len(target.calls_by("a")) >= 4

                await eventually(a_retried, "a retries its effect")
                target.unreachable.clear()
                await ready(api, "unreachable")
            assert "b" not in log.seen, "the standby led while the target was cut off"
            assert a.term == term, "the leader lost its Lease over the effect target"
            retried = target.calls_by("a")
            assert len({key for key, _ in retried}) == 1, "every retry under the same key"
            assert list(target.arrived.values()) == [1], "one call reached the target"

            target.held = asyncio.Event()
            await create(api, "in-flight")

            async def in_flight() -> bool:
                return bool(target.waiting)

            await eventually(in_flight, "an effect in flight")
            [held_key] = target.waiting
            async with following(a, b) as log:
                stopping = asyncio.create_task(a.stop())
                await asyncio.sleep(0.2)
                assert not stopping.done(), "the stop did not wait for the effect"
                assert a.leads, "the Lease was released with an effect in flight"
                target.held.set()
                await stopping
                await leading(b)
                await asyncio.sleep(2 * SAMPLE)
            handover = log.seen["b"][0] - log.seen["a"][-1]
            await ready(api, "unreachable", "in-flight")
    assert log.both == []
    assert handover < 2 * RETRY_SECONDS, f"handover took {handover:.3f} s"
    a_journal = await JournalEffects.read(tmp_path / "a" / "journal.db")
    assert a_journal.succeeded[held_key] == 1, "the in-flight effect's success was not journaled"
    # b, with a journal of its own, may send the finished effect again: under its key
    assert {key for _, key, _ in target.calls} == set(target.arrived) == {retried[0][0], held_key}
    print(f"L8: handover {handover:.3f} s after the release")
