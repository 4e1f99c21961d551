"""GET and LIST: one object, or a filtered, paged collection (optionally as a Table)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.apiserver.admission.chain import in_version
from engine.apiserver.http.target import Target
from engine.apiserver.schema import custom as schema
from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.store.errors import ApiError, not_found
from engine.apiserver.store.resource_types import ResourceType
from engine.apiserver.store.storage import Store
from engine.apiserver.verbs import selector
from engine.apiserver.verbs import table_output as table
from engine.apiserver.verbs.builtin_printers import PRINTERS
from engine.apiserver.verbs.conversion import convert

EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter."
)


TOO_LARGE_WAIT_SECONDS = 1.0
"""How long a list or watch from a resourceVersion newer than the store's waits for the
store to reach it before it is refused (kube-apiserver waits a few seconds too)."""


async def reached(store: Store, rv: int, *, seconds: float) -> bool:
    """Whether the store's revision reaches `rv` within `seconds` (at once when it has)."""
    if store.revision >= rv:
        return True
    queue = store.subscribe()
    try:
        async with asyncio.timeout(seconds):
            while store.revision < rv:
                await queue.get()
    except TimeoutError:
        return False
    finally:
        store.unsubscribe(queue)
    return True


def too_large(requested: int, current: int) -> ApiError:
    """504 Timeout for a resourceVersion the store has not reached, with the cause
    `ResourceVersionTooLarge`, as kube-apiserver answers it (a client relists on it: an
    API server restored from a backup is behind the versions its clients saw)."""
    return ApiError(
        504,
        f"Timeout: Too large resource version: {requested}, current: {current}",
        reason="Timeout",
        details={
            "causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ],
            "retryAfterSeconds": 1,
        },
    )


async def require_reached(store: Store, requested: str) -> None:
    """Return once the store has reached the digits `requested` (after at most
    `TOO_LARGE_WAIT_SECONDS`); else ApiError 504 (`too_large`)."""
    rv = int(requested)
    if not await reached(store, rv, seconds=TOO_LARGE_WAIT_SECONDS):
        raise too_large(rv, store.revision)


def present(rtype: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` as served through `rtype`: its kind and apiVersion, schema defaults applied."""
    if obj.get("apiVersion") != rtype.group_version:
        obj = convert(obj, api_version=rtype.group_version)
    if rtype.custom and rtype.schema is not None and rtype.has_defaults:
        written = int((obj.get("metadata") or {}).get("resourceVersion") or 0)
        if written <= rtype.schema_revision:  # admitted under an older schema: default now
            return schema.apply_defaults(obj, rtype.schema)
    return obj if isinstance(obj, dict) else dict(obj)


def table_of(
    rtype: ResourceType, items: Sequence[Mapping[str, Any]], *, now: datetime, resource_version: str
) -> dict[str, Any]:
    """`items` as a Table: a built-in kind's printer columns, else the type's own columns."""
    printer = None if rtype.custom else PRINTERS.get((rtype.group, rtype.kind))
    if printer is not None:
        return table.render_table(items, columns=printer.columns, now=now,
                                  resource_version=resource_version,
                                  printer_cells=printer.cells)  # fmt: skip
    return table.render_table(
        items, columns=rtype.printer_columns, now=now, resource_version=resource_version
    )


async def get_object(ctx: ApiContext, target: Target) -> dict[str, Any]:
    """The object the target names (converted to its version); ApiError 404 if absent."""
    obj = ctx.store.get(target.key())
    if obj is None:
        assert target.name is not None
        raise not_found(target.rtype.plural, target.name, group=target.rtype.group)
    return present(target.rtype, (await in_version(ctx, target.rtype, [obj]))[0])


@dataclass(frozen=True)
class Selection:
    """Label and field selectors of a list or watch."""

    labels: selector.LabelSelector
    fields: selector.FieldSelector

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether `obj` is selected."""
        if self.everything:
            return True
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return self.labels.matches(labels) and self.fields.matches(obj)

    @property
    def everything(self) -> bool:
        """Whether every object is selected (no label and no field selector)."""
        return self.labels.empty and self.fields.empty


def parse_selection(query: Mapping[str, str]) -> Selection:
    """Selectors from `labelSelector` and `fieldSelector`; ApiError 400 if malformed."""
    try:
        return Selection(
            labels=selector.parse_label_selector(query.get("labelSelector", "")),
            fields=selector.parse_field_selector(query.get("fieldSelector", "")),
        )
    except selector.SelectorError as bad:
        raise ApiError(400, f"unable to parse requirement: {bad}") from None


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(
            400, "continue key is not valid: incorrect encoded start resourceVersion"
        ) from None


def _encode_continue(rv: int, start: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": start}).encode()).decode()


def _positive_int(query: Mapping[str, str], name: str) -> int:
    raw = query.get(name, "")
    if not raw:
        return 0
    try:
        return max(0, int(raw))
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {raw!r}") from None


async def list_objects(
    ctx: ApiContext, target: Target, query: Mapping[str, str], *, accept: str
) -> dict[str, Any]:
    """A `{Kind}List` (or Table) of the selected objects, paged by `limit`/`continue`.

    The list's resourceVersion is the store revision it reflects. A continue token or an
    Exact resourceVersion from before the compacted revision is ApiError 410 Expired.
    Custom resources stored in another version are converted in one batch.
    """
    store = ctx.store
    rtype = target.rtype
    selection = parse_selection(query)
    limit = _positive_int(query, "limit")
    start = ""
    list_rv = store.revision
    token = query.get("continue", "")
    if token:
        token_rv, start = _decode_continue(token)
        if token_rv < store.compacted:
            raise ApiError(410, EXPIRED_CONTINUE, reason="Expired")
    requested = query.get("resourceVersion", "")
    exact = query.get("resourceVersionMatch") == "Exact" and requested
    if exact and (not requested.isdigit() or int(requested) < store.compacted):
        raise ApiError(
            410, f"too old resource version: {requested} ({store.compacted})", reason="Expired"
        )
    if requested.isdigit() and int(requested) > list_rv and not token:
        await require_reached(store, requested)
        list_rv = store.revision
    items: list[dict[str, Any]] = []
    next_start = ""
    remaining = 0
    everything = selection.everything
    for key, obj in store.items(rtype.prefix(target.namespace)):
        if start and key <= start:
            continue
        if not everything and not selection.matches(obj):
            continue
        if limit and len(items) >= limit:
            remaining += 1
            continue
        items.append(obj)
        next_start = key
    items = [present(rtype, obj) for obj in await in_version(ctx, rtype, items)]
    metadata: dict[str, Any] = {"resourceVersion": str(list_rv)}
    if remaining:
        metadata["continue"] = _encode_continue(list_rv, next_start)
        metadata["remainingItemCount"] = remaining
    if table.wants_table(accept):
        rendered = table_of(rtype, items, now=ctx.now(), resource_version=str(list_rv))
        rendered.setdefault("metadata", {}).update(metadata)
        return rendered
    return {
        "kind": f"{rtype.kind}List",
        "apiVersion": rtype.group_version,
        "metadata": metadata,
        "items": items,
    }
