"""Walk a value alongside its structural schema: prune unknown fields, fill defaults.

These functions change the value they are given in place; callers pass a private deep
copy (schema.admit and schema.apply_defaults do). Pure otherwise: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, TypeGuard

Path = tuple[str | int, ...]
_ROOT_KEYS = frozenset({"apiVersion", "kind", "metadata"})


def flag(schema: Mapping[str, Any], name: str) -> bool:
    return schema.get(name) is True


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """isinstance(value, Mapping), answered without the ABC check for a plain dict (what a
    decoded schema holds) or None (an absent keyword): these walks ask it for every field
    of every write."""
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def properties_of(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    props = schema.get("properties")
    return props if _is_mapping(props) else {}


def additional_of(schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
    extra = schema.get("additionalProperties")
    return extra if _is_mapping(extra) else None


def items_of(schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
    items = schema.get("items")
    return items if _is_mapping(items) else None


def child_schema(schema: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    props = schema.get("properties")
    if props is not None and _is_mapping(props):
        sub = props.get(key)
        if sub is not None and _is_mapping(sub):
            return sub
    return additional_of(schema)


def prune_unknown(
    node: Any, schema: Mapping[str, Any], path: Path, unknown: list[Path], *, root: bool = False
) -> None:
    """Delete fields the schema does not specify, appending each removed path to `unknown`.

    Kept: everything under `x-kubernetes-preserve-unknown-fields`, values matched by an
    `additionalProperties` schema, and `apiVersion`/`kind`/`metadata` at the root (`root`)
    or in an `x-kubernetes-embedded-resource`. A value of the wrong type is left alone for
    validation to report.
    """
    if isinstance(node, dict):
        if flag(schema, "x-kubernetes-int-or-string"):
            return
        kept_meta = root or flag(schema, "x-kubernetes-embedded-resource")
        preserve = flag(schema, "x-kubernetes-preserve-unknown-fields")
        for key in list(node):
            if kept_meta and key in _ROOT_KEYS:
                continue
            sub = child_schema(schema, key)
            if sub is not None:
                prune_unknown(node[key], sub, (*path, key), unknown)
            elif not (preserve or schema.get("additionalProperties") is True):
                del node[key]
                unknown.append((*path, key))
    elif isinstance(node, list):
        items = items_of(schema)
        if items is not None:
            for index, item in enumerate(node):
                prune_unknown(item, items, (*path, index), unknown)


def _needsfill_defaults(node: Mapping[str, Any], key: str, sub: Mapping[str, Any]) -> bool:
    if "default" not in sub:
        return False
    return key not in node or (node[key] is None and not flag(sub, "nullable"))


def fill_defaults(node: Any, schema: Mapping[str, Any]) -> None:
    """Set each absent property that has a `default` (and each non-nullable null one).

    Defaults apply only inside objects that exist, and defaulted values get their own
    nested defaults, as in the apiextensions-apiserver.
    """
    if isinstance(node, dict):
        for key, sub in properties_of(schema).items():
            if _is_mapping(sub) and _needsfill_defaults(node, key, sub):
                node[key] = copy.deepcopy(sub["default"])
        extra = additional_of(schema)
        for key, value in node.items():
            sub = child_schema(schema, key)
            if sub is None:
                continue
            if value is None and sub is extra and _needsfill_defaults(node, key, sub):
                node[key] = value = copy.deepcopy(sub["default"])
            fill_defaults(value, sub)
    elif isinstance(node, list):
        items = items_of(schema)
        if items is None:
            return
        for index, item in enumerate(node):
            if item is None and "default" in items and not flag(items, "nullable"):
                node[index] = copy.deepcopy(items["default"])
            fill_defaults(node[index], items)


def drop_nulls(node: Any, schema: Mapping[str, Any]) -> None:
    """Delete null properties that are neither nullable nor defaulted (Kubernetes prunes them)."""
    if isinstance(node, dict):
        for key in list(node):
            sub = child_schema(schema, key)
            if sub is None:
                continue
            if node[key] is None and not flag(sub, "nullable") and "default" not in sub:
                del node[key]
            else:
                drop_nulls(node[key], sub)
    elif isinstance(node, list):
        items = items_of(schema)
        if items is not None:
            for item in node:
                drop_nulls(item, items)
