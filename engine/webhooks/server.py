"""The webhook server: the operator's admission and conversion webhooks over HTTPS.

`POST /validate`, `POST /mutate` (AdmissionReview v1) and `POST /convert`
(ConversionReview v1); `GET /healthz`. Every admission decision is journaled on the
object's webhook stream (engine.webhooks.decisions) before it is answered, and a failed
conversion per object it failed; each is counted in the metrics. Nothing a handler does,
and no body a client sends, takes the server down: a malformed body is a 400, a journal
that cannot take the decision is a 500 (the API server then applies failurePolicy).

The serving certificate is checked every `rotation_check_seconds`: a renewed pair is
loaded into the live TLS context (new connections use it), and a new CA is handed to
`on_new_ca` so the webhook configurations' caBundle follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from engine.journal.store import Journal
from engine.runtime.reconcile.operator import Operator
from engine.telemetry.metrics import EngineMetrics
from engine.webhooks import admission_review, conversion_review
from engine.webhooks.certificates import CertificateError, ServingPair
from engine.webhooks.decisions import conversion_failed, webhook_stream

log = logging.getLogger("engine.webhooks")
MAX_BODY = 3 * 1024 * 1024
"""The largest review body accepted (an object is at most 1.5 MiB, twice in an UPDATE)."""


class Certificates(Protocol):
    """Where the serving pair comes from (`SelfSigned` or `Mounted`)."""

    def ensure(self) -> ServingPair: ...


@dataclass(frozen=True)
class WebhookServerDeps:
    """What the webhook server needs. `handler_timeout`: a handler's deadline in seconds
    (below the configurations' timeoutSeconds, so the engine answers first)."""

    operator: Operator
    journal: Journal
    certificates: Certificates
    metrics: EngineMetrics | None = None
    host: str = "127.0.0.1"
    port: int = 0
    handler_timeout: float = 8.0
    rotation_check_seconds: float = 3600.0
    on_new_ca: Callable[[bytes], Awaitable[None]] | None = None
    redact_fields: tuple[str, ...] = field(default=())


@dataclass
class RunningWebhooks:
    """A started webhook server: its base URL and the CA clients must trust."""

    url: str
    port: int
    ca_pem: bytes
    pair: ServingPair


def _status(code: int, message: str) -> web.Response:
    body = {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": message,
        "reason": "BadRequest" if code == 400 else "InternalError",
        "code": code,
    }
    return web.json_response(body, status=code)


class WebhookApp:
    """The request handlers, bound to one operator and journal."""

    def __init__(self, deps: WebhookServerDeps) -> None:
        self._deps = deps
        self._secret_fields = tuple(deps.operator.secret_fields) + tuple(deps.redact_fields)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        operator = self._deps.operator
        if operator.validate is not None:
            app.router.add_post("/validate", self._validate)
        if operator.mutate is not None:
            app.router.add_post("/mutate", self._mutate)
        if operator.resource.served_versions:
            app.router.add_post("/convert", self._convert)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _validate(self, request: web.Request) -> web.Response:
        return await self._admit("validate", self._deps.operator.validate, request)

    async def _mutate(self, request: web.Request) -> web.Response:
        return await self._admit("mutate", self._deps.operator.mutate, request)

    async def _body(self, request: web.Request) -> Any:
        try:
            return json.loads(await request.read())
        except ValueError as bad:
            raise ValueError(f"the body is not JSON: {bad}") from None

    async def _admit(self, name: str, handler: Any, request: web.Request) -> web.Response:
        deps = self._deps
        started = time.perf_counter()
        try:
            review = admission_review.review_request(await self._body(request))
        except ValueError as bad:
            self._count(name, "bad_request", started)
            return _status(400, str(bad))
        answer = await admission_review.admit(
            name, handler, review, deadline=deps.handler_timeout, secret_fields=self._secret_fields
        )
        decision = answer.decision
        resource = deps.operator.resource
        stream = webhook_stream(
            group=resource.group,
            kind=resource.kind,
            namespace=decision.namespace,
            name=decision.name,
        )
        try:
            await deps.journal.append(stream, [decision.event()])
        except Exception as error:
            log.error("webhook decision not journaled: %s", error)
            self._count(name, "error", started)
            return _status(500, f"the engine could not journal its {name} decision: {error}")
        if decision.result == "error":
            log.warning("%s %s/%s: %s", name, decision.namespace, decision.name, decision.message)
        self._count(name, decision.result, started)
        return web.json_response(answer.body, status=answer.http_status)

    async def _convert(self, request: web.Request) -> web.Response:
        deps = self._deps
        started = time.perf_counter()
        try:
            review = conversion_review.review_request(await self._body(request))
        except ValueError as bad:
            self._count("convert", "bad_request", started)
            return _status(400, str(bad))
        resource = deps.operator.resource
        try:
            converted = await asyncio.to_thread(conversion_review.convert, resource, review)
        except conversion_review.ConversionError as failed:
            namespace, _, name = failed.name.rpartition("/")
            stream = webhook_stream(
                group=resource.group, kind=resource.kind, namespace=namespace, name=name
            )
            event = conversion_failed(
                request_uid=review.uid,
                source=failed.source,
                desired=failed.desired,
                message=failed.message,
            )
            with contextlib.suppress(Exception):  # the answer says it all; journal if it can
                await deps.journal.append(stream, [event])
            self._count("convert", "failed", started)
            return web.json_response(conversion_review.response(review, None, failed.message))
        self._count("convert", "converted", started)
        return web.json_response(conversion_review.response(review, converted, None))

    def _count(self, handler: str, result: str, started: float) -> None:
        if self._deps.metrics is not None:
            self._deps.metrics.observe_webhook(handler, result, time.perf_counter() - started)


async def _keep_rotated(
    deps: WebhookServerDeps, context: ssl.SSLContext, running: RunningWebhooks
) -> None:
    while True:
        await asyncio.sleep(deps.rotation_check_seconds)
        try:
            pair = await asyncio.to_thread(deps.certificates.ensure)
            if (
                pair.issued
                or pair.cert_file != running.pair.cert_file
                or (pair.not_after != running.pair.not_after)
            ):
                pair.load_into(context)
                log.info("webhook serving certificate renewed; valid until %s", pair.not_after)
            new_ca = pair.ca_pem and pair.ca_pem != running.ca_pem
            running.pair = pair
            if new_ca:
                running.ca_pem = pair.ca_pem
                if deps.on_new_ca is not None:
                    await deps.on_new_ca(pair.ca_pem)
        except CertificateError as error:
            log.error("webhook certificate: %s", error)
        except Exception:
            log.exception("webhook certificate rotation failed; retrying at the next check")


@contextlib.asynccontextmanager
async def serve_webhooks(deps: WebhookServerDeps) -> AsyncIterator[RunningWebhooks]:
    """Serve the operator's webhooks until the context exits.

    Errors: `CertificateError` (a certificate that cannot be issued or loaded, an expired
    mounted one), `OSError` (the port cannot be bound).
    """
    pair = await asyncio.to_thread(deps.certificates.ensure)
    context = pair.ssl_context()
    runner = web.AppRunner(
        WebhookApp(deps).app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, deps.host, deps.port, ssl_context=context)
        await site.start()
        port = int(runner.addresses[0][1])
        host = "127.0.0.1" if deps.host in ("0.0.0.0", "", "::") else deps.host
        running = RunningWebhooks(f"https://{host}:{port}", port, pair.ca_pem, pair)
        rotation = asyncio.create_task(_keep_rotated(deps, context, running), name="webhook-certs")
        try:
            yield running
        finally:
            rotation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rotation
    finally:
        await runner.cleanup()
