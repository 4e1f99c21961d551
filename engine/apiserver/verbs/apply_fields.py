"""Server-side apply's field ownership, as far as removal needs it.

An apply records the fields its configuration sets under its manager's `Apply` entry in
`metadata.managedFields` (`fieldsV1`: `f:<name>` per map key, a leaf `{}` for a value; a
list is owned whole). The next apply by the same manager removes the fields it owned
before and no longer sets, unless another manager's apply also owns them — so a label or
an annotation taken out of an operator's manifest goes from the object, as on a cluster.
Pure: no I/O; never mutates its inputs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

FieldSet = dict[str, Any]
"""`fieldsV1`: `{"f:metadata": {"f:labels": {"f:app": {}}}}`; `{}` is a whole value."""

_IDENTITY = frozenset({"apiVersion", "kind"})
_SERVER_METADATA = frozenset(
    {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
     "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"}
)  # fmt: skip


def fields_of(config: Mapping[str, Any]) -> FieldSet:
    """The fields an apply configuration sets (identity and server metadata left out)."""
    owned: FieldSet = {}
    for key, value in config.items():
        if key in _IDENTITY or value is None:
            continue
        if key == "metadata" and isinstance(value, Mapping):
            meta = {k: v for k, v in value.items() if k not in _SERVER_METADATA}
            if meta:
                owned["f:metadata"] = _fields(meta)
            continue
        owned[f"f:{key}"] = _fields(value)
    return owned


def _fields(value: Any) -> FieldSet:
    if isinstance(value, Mapping):
        return {f"f:{k}": _fields(v) for k, v in value.items() if v is not None}
    return {}


def owned_by(obj: Mapping[str, Any], manager: str) -> FieldSet:
    """The fields `manager`'s last apply set on `obj` (empty when it never applied)."""
    for entry in (obj.get("metadata") or {}).get("managedFields") or ():
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            fields = entry.get("fieldsV1")
            return fields if isinstance(fields, dict) else {}
    return {}


def others_applied(obj: Mapping[str, Any], manager: str) -> list[FieldSet]:
    """The field sets of every other manager's apply on `obj`."""
    sets = []
    for entry in (obj.get("metadata") or {}).get("managedFields") or ():
        if entry.get("manager") != manager and entry.get("operation") == "Apply":
            fields = entry.get("fieldsV1")
            if isinstance(fields, dict):
                sets.append(fields)
    return sets


def _paths(fields: FieldSet, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every leaf path of `fields` (a `{}` is a leaf: the value is owned whole)."""
    for key, sub in fields.items():
        path = (*prefix, key.removeprefix("f:"))
        if isinstance(sub, dict) and sub:
            yield from _paths(sub, path)
        else:
            yield path


def _covers(fields: FieldSet, path: tuple[str, ...]) -> bool:
    """Whether `fields` owns `path` or a part of it (a prefix, or something beneath)."""
    node: Any = fields
    for part in path:
        if not isinstance(node, dict):
            return False
        if not node and node is not fields:
            return True  # owned whole above this point
        key = f"f:{part}"
        if key not in node:
            return False
        node = node[key]
    return True


def pruned(
    obj: Mapping[str, Any], *, before: FieldSet, now: FieldSet, others: list[FieldSet]
) -> dict[str, Any]:
    """`obj` without the fields the manager owned `before`, no longer sets `now`, and no
    other applier owns; maps left empty by a removal go too."""
    result = copy.deepcopy(dict(obj))
    for path in _paths(before):
        if _covers(now, path) or any(_covers(other, path) for other in others):
            continue
        _remove(result, path)
    return result


def _remove(node: dict[str, Any], path: tuple[str, ...]) -> None:
    head, *rest = path
    if head not in node:
        return
    if not rest:
        del node[head]
        return
    child = node[head]
    if isinstance(child, dict):
        _remove(child, tuple(rest))
        if not child:
            del node[head]
