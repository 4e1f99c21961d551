"""The aiohttp application: discovery, OpenAPI, resource routes, and the middlewares that
turn every failure into a one-line Status body and write the audit log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from engine.apiserver.http.access import AccessControl
from engine.apiserver.http.audit import AuditEntry, AuditLog
from engine.apiserver.http.handlers import (
    AUDIT_KEY,
    CONTEXT_KEY,
    USER_KEY,
    json_response,
    resource,
)
from engine.apiserver.http.reviews import ACCESS_KEY, TOKENS_KEY, add_review_routes
from engine.apiserver.http.security import Security, SecurityOptions, build_security
from engine.apiserver.schema import openapi
from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.store.errors import ApiError, dumps, status_body
from engine.apiserver.store.storage import StoreClosed

LOG = logging.getLogger(__name__)
AUDIT_LOG_KEY = web.AppKey("audit_log", AuditLog)
VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error_response(code: int, body: dict[str, object]) -> web.Response:
    return web.Response(body=dumps(body) + b"\n", status=code, content_type="application/json")


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer ApiError and aiohttp's own HTTP errors with a single-line Status."""
    try:
        return await handler(request)
    except ApiError as error:
        return _error_response(error.code, error.status())
    except web.HTTPException as http:
        if http.status < 400:
            raise
        reason = {404: "NotFound", 405: "MethodNotAllowed"}.get(http.status, "BadRequest")
        message = (
            "the server could not find the requested resource"
            if http.status == 404
            else http.reason
        )
        return _error_response(http.status, status_body(http.status, message, reason=reason))
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except StoreClosed as closed:  # the server is stopping: a client retries elsewhere
        return _error_response(503, status_body(503, str(closed), reason="ServiceUnavailable"))
    except Exception as unexpected:  # a bug: still answer with a Status, and log it
        LOG.exception("internal error serving %s %s", request.method, request.path)
        message = f"internal error: {type(unexpected).__name__}: {unexpected}"
        return _error_response(500, status_body(500, message, reason="InternalError"))


@web.middleware
async def audit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record one audit entry per request once its status is known."""
    log = request.app.get(AUDIT_LOG_KEY)
    response = await handler(request)
    if log is not None:
        fields = request.get(AUDIT_KEY) or {
            "verb": request.method.lower(), "group": "", "resource": "",
            "subresource": "", "namespace": "", "name": "",
        }  # fmt: skip
        log.record(
            AuditEntry(
                **fields,
                code=response.status,
                path=request.path,
                user_agent=request.headers.get("User-Agent", ""),
                user=user.name if (user := request.get(USER_KEY)) is not None else "",
            )
        )
    return response


def _ctx(request: web.Request) -> ApiContext:
    return request.app[CONTEXT_KEY]


async def version(request: web.Request) -> web.Response:
    """GET /version."""
    return json_response(VERSION)


async def api_versions(request: web.Request) -> web.Response:
    """GET /api."""
    return json_response(_ctx(request).registry.api_versions())


async def group_list(request: web.Request) -> web.Response:
    """GET /apis."""
    return json_response(_ctx(request).registry.group_list())


async def group(request: web.Request) -> web.Response:
    """GET /apis/{group}."""
    doc = _ctx(request).registry.group_document(request.match_info["group"])
    if doc is None:
        raise ApiError(404, "the server could not find the requested resource")
    return json_response(doc)


async def resource_list(request: web.Request) -> web.Response:
    """GET /api/{version} or /apis/{group}/{version}."""
    doc = _ctx(request).registry.resource_list(
        request.match_info.get("group", ""), request.match_info["version"]
    )
    if doc is None:
        raise ApiError(404, "the server could not find the requested resource")
    return json_response(doc)


async def openapi_index(request: web.Request) -> web.Response:
    """GET /openapi/v3."""
    return json_response(openapi.index_document(_ctx(request).registry))


async def openapi_group_version(request: web.Request) -> web.Response:
    """GET /openapi/v3/api/v1 or /openapi/v3/apis/{group}/{version}."""
    doc = openapi.group_version_document(
        _ctx(request).registry, request.match_info.get("group", ""), request.match_info["version"]
    )
    if doc is None:
        raise ApiError(404, "the server could not find the requested resource")
    return json_response(doc)


async def healthy(request: web.Request) -> web.Response:
    """GET /healthz, /readyz, /livez."""
    return web.Response(text="ok")


def build_app(
    ctx: ApiContext,
    *,
    audit_log: AuditLog | None,
    token: str | None = None,
    security: Security | None = None,
) -> web.Application:
    """The application serving `ctx`; `audit_log` receives one entry per request.

    `security` decides authentication and authorization (http/security.py); without it,
    with a `token`, every request but the health probes must carry it (401 otherwise,
    audited), and without a token every request is served.
    """
    if security is None:
        security = build_security(
            ctx, SecurityOptions(), host="0.0.0.0" if token else "127.0.0.1", token=token,
            state_dir=Path("."),
        )  # fmt: skip
    access: AccessControl = security.access
    # without an audit log the audit middleware would only pass each request on
    middlewares: list[Middleware] = [audit] if audit_log is not None else []
    middlewares += [status_errors, access.middleware()]
    app = web.Application(middlewares=middlewares, client_max_size=16 * 1024 * 1024)
    app[CONTEXT_KEY] = ctx
    app[ACCESS_KEY] = access
    app[TOKENS_KEY] = security.tokens
    if audit_log is not None:
        app[AUDIT_LOG_KEY] = audit_log
    app.router.add_get("/version", version)
    for path in ("/healthz", "/readyz", "/livez"):
        app.router.add_get(path, healthy)
    app.router.add_get("/api{slash:/?}", api_versions)
    app.router.add_get("/apis{slash:/?}", group_list)
    app.router.add_get("/api/{version}{slash:/?}", resource_list)
    app.router.add_get("/apis/{group}{slash:/?}", group)
    app.router.add_get("/apis/{group}/{version}{slash:/?}", resource_list)
    app.router.add_get("/openapi/v3", openapi_index)
    app.router.add_get("/openapi/v3/api/{version}", openapi_group_version)
    app.router.add_get("/openapi/v3/apis/{group}/{version}", openapi_group_version)
    add_review_routes(app)  # before the generic resource routes, which would match them
    app.router.add_route("*", "/api/{tail:.+}", resource)
    app.router.add_route("*", "/apis/{tail:.+}", resource)
    return app
