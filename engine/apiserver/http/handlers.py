"""HTTP handlers for resource URLs: dispatch by method and target to reads, writes,
deletion and watch, and encode the answers (JSON, Warning headers, audit fields)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from engine.apiserver.admission.chain import in_version
from engine.apiserver.authn.user_info import UserInfo
from engine.apiserver.http.body import decode_object, media_type
from engine.apiserver.http.target import Target, parse_target
from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.store.errors import ApiError, dumps
from engine.apiserver.verbs import scale, writes
from engine.apiserver.verbs.deletion import delete_collection, delete_object, parse_delete_options
from engine.apiserver.verbs.reads import (
    get_object,
    list_objects,
    parse_selection,
    present,
    table_of,
)
from engine.apiserver.verbs.table_output import wants_table
from engine.apiserver.verbs.watch import parse_bool, serve_watch

CONTEXT_KEY = web.AppKey("api_context", ApiContext)
AUDIT_KEY = web.RequestKey("engine_audit", dict[str, str])
USER_KEY = web.RequestKey("engine_user", UserInfo)
_FIELD_VALIDATION = ("", "Ignore", "Warn", "Strict")


def json_response(body: Any, *, status: int = 200, warnings: tuple[str, ...] = ()) -> web.Response:
    """A compact JSON response with `Warning: 299` headers for `warnings`."""
    response = web.Response(body=dumps(body), status=status, content_type="application/json")
    for warning in warnings:
        response.headers.add("Warning", f'299 - "{warning}"')
    return response


def _verb(method: str, target: Target, query: Mapping[str, str]) -> str:
    if method == "GET":
        if target.name is not None:
            return "get"
        return "watch" if query.get("watch") and parse_bool(query["watch"]) else "list"
    if method == "DELETE":
        return "delete" if target.name is not None else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def _write_options(query: Mapping[str, str], user: UserInfo | None) -> writes.WriteOptions:
    validation = query.get("fieldValidation", "")
    if validation not in _FIELD_VALIDATION:
        raise ApiError(400, f'fieldValidation "{validation}" is not one of Ignore, Warn, Strict')
    dry_run = query.get("dryRun", "")
    if dry_run and dry_run != "All":
        raise ApiError(400, f'dryRun "{dry_run}" is not supported; use dryRun=All')
    force = query.get("force", "")
    return writes.WriteOptions(
        dry_run=dry_run == "All",
        field_manager=query.get("fieldManager") or None,
        field_validation=validation,
        force=bool(force) and parse_bool(force),
        user=user,
    )


async def resource(request: web.Request) -> web.StreamResponse:
    """Every /api/v1/... and /apis/{g}/{v}/... resource URL."""
    ctx = request.app[CONTEXT_KEY]
    target = parse_target(ctx.registry, request.path)
    query = request.query
    verb = _verb(request.method, target, query)
    request[AUDIT_KEY] = {
        "verb": verb,
        "group": target.rtype.group,
        "resource": target.rtype.plural,
        "subresource": target.subresource or "",
        "namespace": target.namespace or "",
        "name": target.name or "",
    }
    if target.subresource == "scale":
        raw = await request.read() if verb in ("update", "patch") else b""
        content_type = request.headers.get("Content-Type", "application/json")
        return json_response(
            await scale.serve_scale(
                ctx,
                target,
                verb=verb,
                raw=raw,
                content_type=content_type,
                user=request.get(USER_KEY),
            )
        )
    if verb == "watch":
        return await serve_watch(ctx, request, target, query)
    if verb == "list":
        return json_response(
            await list_objects(ctx, target, query, accept=request.headers.get("Accept", ""))
        )
    if verb == "get":
        found = await get_object(ctx, target)
        if wants_table(request.headers.get("Accept", "")):
            rv = str(found["metadata"].get("resourceVersion", ""))
            return json_response(
                table_of(target.rtype, [found], now=ctx.now(), resource_version=rv)
            )
        return json_response(found)
    if verb in ("delete", "deletecollection"):
        return await _delete(ctx, request, target, verb=verb)
    raw = await request.read()
    content_type = request.headers.get("Content-Type", "application/json")
    opts = _write_options(query, request.get(USER_KEY))
    rtype = target.rtype
    if verb == "create":
        if target.name is not None:
            raise ApiError(
                405, f"POST is not supported on a single {rtype.kind}", reason="MethodNotAllowed"
            )
        body = decode_object(raw, content_type, strict=opts.field_validation == "Strict")
        result = await writes.create(ctx, target, body, opts)
        return json_response(present(rtype, result.obj), status=201, warnings=result.warnings)
    if verb == "update":
        body = decode_object(raw, content_type, strict=opts.field_validation == "Strict")
        result = await writes.update(ctx, target, body, opts)
        return json_response(present(rtype, result.obj), warnings=result.warnings)
    if verb == "patch":
        if media_type(content_type) == "application/vnd.kubernetes.protobuf":
            decode_object(raw, content_type, strict=False)  # raises the 415 with the alternative
        result = await writes.patch_object(ctx, target, raw, content_type, opts)
        status = 201 if result.created else 200
        return json_response(present(rtype, result.obj), status=status, warnings=result.warnings)
    raise ApiError(405, f"{request.method} is not supported here", reason="MethodNotAllowed")


async def _delete(
    ctx: ApiContext, request: web.Request, target: Target, *, verb: str
) -> web.Response:
    raw = await request.read()
    body: dict[str, Any] = {}
    if raw.strip():
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise ApiError(400, "the DeleteOptions body is not valid JSON") from None
        if isinstance(parsed, dict):
            body = parsed
    opts = replace(parse_delete_options(body, request.query), user=request.get(USER_KEY))
    rtype = target.rtype
    if verb == "delete":
        answer, _ = await delete_object(ctx, rtype, target.key(), opts)
        if answer.get("kind") == "Status":
            return json_response(answer)
        return json_response(present(rtype, (await in_version(ctx, rtype, [answer]))[0]))
    selection = parse_selection(request.query)
    keys = [
        key
        for key, obj in ctx.store.items(rtype.prefix(target.namespace))
        if selection.matches(obj)
    ]
    deleted = await delete_collection(ctx, rtype, keys, opts)
    return json_response(
        {
            "kind": f"{rtype.kind}List",
            "apiVersion": rtype.group_version,
            "metadata": {"resourceVersion": str(ctx.store.revision)},
            "items": [present(rtype, obj) for obj in deleted],
        }
    )
