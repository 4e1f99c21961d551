"""Render lists as meta.k8s.io/v1 Table, the server-side printing kubectl asks for.

NAME first, then a CRD's additionalPrinterColumns (evaluated with the simple JSONPath
subset in apiserver.jsonpath), then AGE; cells are display values (dates become ages, as
duration.HumanDuration prints them). Pure: `now` is passed in.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.apiserver.verbs.jsonpath import UnsupportedPath, evaluate

NAME_COLUMN: Mapping[str, Any] = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. Is required when creating "
    "resources, although some resources may allow a client to request the generation of an "
    "appropriate name automatically. Name is primarily intended for creation idempotence and "
    "configuration definition. Cannot be updated.",
    "priority": 0,
}
AGE_COLUMN: Mapping[str, Any] = {
    "name": "Age",
    "type": "date",
    "format": "",
    "description": "CreationTimestamp is a timestamp representing the server time when this "
    "object was created. It is represented in RFC3339 form and is in UTC.",
    "priority": 0,
}
_CREATION_PATHS = frozenset({".metadata.creationTimestamp", "{.metadata.creationTimestamp}"})


def wants_table(accept: str) -> bool:
    """True when an Accept header asks for `as=Table` (group meta.k8s.io, v1 or v1beta1)."""
    for media_range in accept.split(","):
        params: dict[str, str] = {}
        for part in media_range.split(";")[1:]:
            name, _, value = part.partition("=")
            params[name.strip().lower()] = value.strip()
        if (
            params.get("as") == "Table"
            and params.get("g", "meta.k8s.io") == "meta.k8s.io"
            and params.get("v", "v1") in ("v1", "v1beta1")
        ):
            return True
    return False


def render_table(
    objects: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[Mapping[str, Any]],
    now: datetime,
    resource_version: str = "",
    printer_cells: Callable[[Mapping[str, Any], datetime], list[Any]] | None = None,
) -> dict[str, Any]:
    """A `Table` with one row per object, in the given order.

    `columns` are CRD additionalPrinterColumns (`name`, `type`, `jsonPath`, optional
    `description`, `priority`, `format`). A path that finds nothing gives a null cell
    (kubectl prints `<none>`); a path outside the supported JSONPath subset gives "".
    Each row's `object` is the item's PartialObjectMetadata. Never raises for odd objects.
    With `printer_cells` (a built-in kind's), `columns` are complete definitions and the
    cells are what it computes.
    """
    if printer_cells is not None:
        return _table(
            [dict(c) for c in columns],
            [(printer_cells(obj, now), obj.get("metadata")) for obj in objects],
            resource_version,
        )
    show_age = not any(str(c.get("jsonPath", "")).strip() in _CREATION_PATHS for c in columns)
    definitions = [dict(NAME_COLUMN), *(_definition(c) for c in columns)]
    if show_age:
        definitions.append(dict(AGE_COLUMN))
    rows = []
    for obj in objects:
        metadata = obj.get("metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        cells: list[Any] = [metadata.get("name", "")]
        cells.extend(_cell(obj, column, now) for column in columns)
        if show_age:
            cells.append(_age_cell(metadata.get("creationTimestamp"), now))
        rows.append((cells, metadata))
    return _table(definitions, rows, resource_version)


def _table(
    definitions: list[dict[str, Any]], rows: Sequence[tuple[list[Any], Any]], resource_version: str
) -> dict[str, Any]:
    table_rows = [
        {
            "cells": cells,
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": copy.deepcopy(dict(metadata)) if isinstance(metadata, Mapping) else {},
            },
        }
        for cells, metadata in rows
    ]
    table_metadata = {"resourceVersion": resource_version} if resource_version else {}
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": table_metadata,
        "columnDefinitions": definitions,
        "rows": table_rows,
    }


def format_age(seconds: float) -> str:
    """A duration as k8s.io/apimachinery duration.HumanDuration prints it ("5m30s", "3d")."""
    whole = int(seconds)  # truncates toward zero, like Go's int(d.Seconds())
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 60 * 2:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def _definition(column: Mapping[str, Any]) -> dict[str, Any]:
    priority = column.get("priority", 0)
    return {
        "name": str(column.get("name", "")),
        "type": str(column.get("type", "string")),
        "format": str(column.get("format", "")),
        "description": str(column.get("description", "")),
        "priority": priority if isinstance(priority, int) else 0,
    }


def _cell(obj: Mapping[str, Any], column: Mapping[str, Any], now: datetime) -> Any:
    try:
        found = evaluate(str(column.get("jsonPath", "")), obj)
    except UnsupportedPath:
        return ""
    if not found:
        return None
    value = found[0]
    match column.get("type", "string"):
        case "integer":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return int(value)
        case "number":
            return value if isinstance(value, int | float) and not isinstance(value, bool) else None
        case "boolean":
            return value if isinstance(value, bool) else None
        case "date":
            return _age_cell(value, now)
        case _:
            return _display(value)


def _display(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _age_cell(timestamp: Any, now: datetime) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        created = datetime.fromisoformat(timestamp.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return "<invalid>"
    if created.tzinfo is None or now.tzinfo is None:
        created, now = created.replace(tzinfo=None), now.replace(tzinfo=None)
    return format_age((now - created).total_seconds())
