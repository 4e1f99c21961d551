"""`engine bench webhooks`: the admission webhook's cost over HTTPS, beside its ceiling.

The engine's webhook server (a validate and a mutate handler, every decision journaled
in a SQLite journal with synchronous FULL) and a ceiling server (the same aiohttp and
TLS, answering `allowed` with the request's uid: no handler, no journal) are driven by
one client at the same concurrency, in interleaved rounds, so load on the machine moves
both alike. Figures per side: requests per second, p50 and p99 latency; and the ratio of
the engine's throughput to the ceiling's per round (median, min, max).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from engine.journal.location import open_journal
from engine.runtime.reconcile.admission import AdmissionRequest, Rejected
from engine.runtime.reconcile.operator import CustomResource, Operator
from engine.webhooks.certificates import SelfSigned
from engine.webhooks.server import WebhookServerDeps, serve_webhooks

RESOURCE = CustomResource(
    group="bench.test",
    version="v1",
    kind="Quota",
    plural="quotas",
    schema={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
)


def _validate(request: AdmissionRequest) -> None:
    spec = (request.object or {}).get("spec") or {}
    if spec.get("minReplicas", 0) > spec.get("maxReplicas", 0):
        raise Rejected("spec.minReplicas must not exceed spec.maxReplicas")


async def _mutate(request: AdmissionRequest) -> dict[str, Any]:
    obj = dict(request.object or {})
    obj["spec"] = {"tier": "small", **(obj.get("spec") or {})}
    return obj


async def _provision(ctx: Any) -> None:
    return None


OPERATOR = Operator(resource=RESOURCE, provision=_provision, validate=_validate, mutate=_mutate)


@dataclass(frozen=True, slots=True)
class Side:
    requests_per_s: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True, slots=True)
class WebhookFigures:
    requests: int
    rounds: int
    concurrency: int
    engine: Side
    ceiling: Side
    ratio_median: float
    ratio_min: float
    ratio_max: float

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)


def _review(index: int) -> bytes:
    obj = {
        "apiVersion": "bench.test/v1",
        "kind": "Quota",
        "metadata": {"name": f"q{index}", "namespace": "default"},
        "spec": {"minReplicas": 1, "maxReplicas": 1 + index % 3},
    }
    request = {
        "uid": str(uuid.uuid4()),
        "operation": "CREATE",
        "name": f"q{index}",
        "namespace": "default",
        "userInfo": {"username": "bench"},
        "object": obj,
    }
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


@contextlib.asynccontextmanager
async def _ceiling(context: ssl.SSLContext) -> AsyncIterator[str]:
    async def answer(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        response = {"uid": body["request"]["uid"], "allowed": True}
        return web.json_response(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        )

    app = web.Application()
    app.router.add_post("/validate", answer)
    app.router.add_post("/mutate", answer)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def _round(
    session: aiohttp.ClientSession, url: str, *, requests: int, concurrency: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    indexes = iter(range(requests))

    async def worker() -> None:
        for index in indexes:
            path = "/validate" if index % 2 else "/mutate"
            started = time.perf_counter()
            async with session.post(
                url + path, data=_review(index), headers={"Content-Type": "application/json"}
            ) as answer:
                await answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"{path} answered {answer.status}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def _side(seconds: float, latencies: list[float], requests: int) -> Side:
    ordered = sorted(latencies)
    return Side(
        requests_per_s=round(requests / seconds, 1),
        p50_ms=round(statistics.median(ordered) * 1000, 3),
        p99_ms=round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
    )


async def run_bench(*, requests: int, rounds: int, concurrency: int) -> WebhookFigures:
    with tempfile.TemporaryDirectory(prefix="engine-bench-webhooks-") as scratch:
        directory = Path(scratch)
        journal = await open_journal(directory / "journal.db")
        deps = WebhookServerDeps(
            operator=OPERATOR, journal=journal, certificates=SelfSigned(directory / "certs")
        )
        try:
            async with serve_webhooks(deps) as running:
                trust = ssl.create_default_context(cadata=running.ca_pem.decode())
                async with (
                    _ceiling(running.pair.ssl_context()) as ceiling_url,
                    aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(ssl=trust, limit=concurrency)
                    ) as session,
                ):
                    totals: dict[str, list[Any]] = {"engine": [0.0, []], "ceiling": [0.0, []]}
                    ratios = []
                    for _ in range(rounds):
                        measured = {}
                        for name, url in (("engine", running.url), ("ceiling", ceiling_url)):
                            seconds, latencies = await _round(
                                session, url, requests=requests, concurrency=concurrency
                            )
                            totals[name][0] += seconds
                            totals[name][1].extend(latencies)
                            measured[name] = seconds
                        ratios.append(measured["ceiling"] / measured["engine"])
        finally:
            await journal.close()
    total = requests * rounds
    return WebhookFigures(
        requests=requests,
        rounds=rounds,
        concurrency=concurrency,
        engine=_side(totals["engine"][0], totals["engine"][1], total),
        ceiling=_side(totals["ceiling"][0], totals["ceiling"][1], total),
        ratio_median=round(statistics.median(ratios), 3),
        ratio_min=round(min(ratios), 3),
        ratio_max=round(max(ratios), 3),
    )
