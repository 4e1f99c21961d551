"""Admit a custom resource through its CRD's structural schema: prune, default, validate.

Implements the Kubernetes-specific parts (pruning, defaulting, nullable, `x-kubernetes-*`);
the validation itself is jsonschema's (see schema_validation). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.apiserver.schema import cause
from engine.apiserver.schema.cause import Cause
from engine.apiserver.schema.pruning import (
    Path,
    child_schema,
    drop_nulls,
    fill_defaults,
    flag,
    items_of,
    prune_unknown,
)
from engine.apiserver.schema.structural import structural_causes, structural_problems
from engine.apiserver.schema.validation import field_path, validation_causes
from engine.apiserver.store.errors import dumps
from engine.apiserver.store.json_copy import json_copy

__all__ = [
    "Admission",
    "Cause",
    "admit",
    "apply_defaults",
    "structural_causes",
    "structural_problems",
    "validate_name",
]

_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
    "[a-z0-9])?)*')"
)


@dataclass(frozen=True)
class Admission:
    """The outcome of admitting one object.

    `obj` is a new dict (pruned and defaulted) even when `causes` is non-empty;
    `unknown_fields` lists the dotted paths pruning removed from the caller's object
    (fields added by schema defaults are never reported), for fieldValidation Strict/Warn.
    """

    obj: dict[str, Any]
    causes: tuple[Cause, ...]
    unknown_fields: tuple[str, ...]


def admit(obj: Mapping[str, Any], schema: Mapping[str, Any]) -> Admission:
    """Prune, default and validate `obj` against a CRD version's openAPIV3Schema.

    Order, as in the apiextensions-apiserver: prune unknown fields (unless
    `x-kubernetes-preserve-unknown-fields`), drop non-nullable nulls that have no default,
    apply defaults (only where the parent object exists; defaults are pruned in turn),
    then validate. `apiVersion`, `kind` and `metadata` at the root (and inside
    `x-kubernetes-embedded-resource` values) are never pruned; the root `metadata.name` is
    left to `validate_name`. Never mutates `obj`; never raises for a bad `obj`.
    """
    features = _features_of(schema)
    result = json_copy(dict(obj))
    unknown: list[Path] = []
    prune_unknown(result, schema, (), unknown, root=True)
    if features.defaults:
        fill_defaults(result, schema)
        prune_unknown(result, schema, (), [], root=True)  # defaults may not add unknown fields
    drop_nulls(result, schema)
    causes = validation_causes(result, schema)
    if features.embedded:
        causes.extend(_embedded_causes(result, schema, ()))
    return Admission(
        obj=result,
        causes=tuple(causes),
        unknown_fields=tuple(field_path(p) for p in unknown),
    )


@dataclass(frozen=True)
class _Features:
    """Which of admission's walks a schema can need: without a `default` anywhere there is
    nothing to fill (nor to prune after filling), without an embedded resource nothing
    to check there. Found by a search of the schema's JSON, so a property that happens to
    be named like the keyword only costs the walk."""

    defaults: bool
    embedded: bool


_FEATURES: dict[int, tuple[Mapping[str, Any], _Features]] = {}
_FEATURES_LIMIT = 256


def _features_of(schema: Mapping[str, Any]) -> _Features:
    """`schema`'s features, found once per schema object (the entry holds the schema, so
    its id cannot be reused while it is cached)."""
    found = _FEATURES.get(id(schema))
    if found is not None and found[0] is schema:
        return found[1]
    text = dumps(schema).decode()
    features = _Features(
        defaults='"default"' in text, embedded='"x-kubernetes-embedded-resource"' in text
    )
    if len(_FEATURES) >= _FEATURES_LIMIT:
        _FEATURES.clear()
    _FEATURES[id(schema)] = (schema, features)
    return features


def apply_defaults(obj: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `obj` with the schema's defaults applied (no pruning, no validation).

    Used when reading from storage, so that defaults added to a CRD after an object was
    written show up on read, as in Kubernetes. Never mutates `obj`.
    """
    result = json_copy(dict(obj))
    fill_defaults(result, schema)
    return result


def validate_name(name: str) -> str | None:
    """None when `name` is a DNS-1123 subdomain, else Kubernetes' explanation of why not."""
    problems = []
    if len(name) > 253:
        problems.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(name):
        problems.append(_DNS1123_SUBDOMAIN_MESSAGE)
    return "; ".join(problems) or None


def _embedded_causes(node: Any, schema: Mapping[str, Any], path: Path) -> list[Cause]:
    found: list[Cause] = []
    if isinstance(node, dict):
        if flag(schema, "x-kubernetes-embedded-resource"):
            found.extend(_embedded_resource_causes(node, path))
        for key, value in node.items():
            sub = child_schema(schema, key)
            if sub is not None:
                found.extend(_embedded_causes(value, sub, (*path, key)))
    elif isinstance(node, list):
        items = items_of(schema)
        if items is not None:
            for index, item in enumerate(node):
                found.extend(_embedded_causes(item, items, (*path, index)))
    return found


def _embedded_resource_causes(node: Mapping[str, Any], path: Path) -> list[Cause]:
    found: list[Cause] = []
    for key in ("apiVersion", "kind"):
        where = field_path((*path, key))
        value = node.get(key)
        if key not in node:
            found.append(cause.required(where, "must not be empty"))
        elif not isinstance(value, str):
            found.append(cause.invalid(where, value, "must be a string"))
        elif not value:
            found.append(cause.invalid(where, value, "must not be empty"))
    metadata = node.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get("name"), str):
        problem = validate_name(metadata["name"])
        if problem is not None:
            where = field_path((*path, "metadata", "name"))
            found.append(cause.invalid(where, metadata["name"], problem))
    return found
