"""Strategic merge patch for built-in kinds, keyed by the well-known list fields.

Merge-patch semantics, except that lists of the fields in `MERGE_KEYS` merge element by
element on their Kubernetes `patchMergeKey`, `finalizers` merges as a set, and the
directives kubectl sends are honoured: `$patch: replace|delete|merge`,
`$setElementOrder/<field>`, `$deleteFromPrimitiveList/<field>` and `$retainKeys`.
The field name alone decides the strategy (no per-kind OpenAPI lookup).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

MERGE_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "imagePullSecrets": ("name",),
    "resourceClaims": ("name",),
    "hostAliases": ("ip",),
    "ownerReferences": ("uid",),
    "conditions": ("type",),
    "topologySpreadConstraints": ("topologyKey",),
    # container ports merge on containerPort, Service ports on port
    "ports": ("containerPort", "port"),
}
"""Field name -> candidate merge keys (the first one present in the list's elements wins)."""

SET_LISTS: Final = frozenset({"finalizers"})
"""Primitive lists with patchStrategy=merge: the patch's values are added to the live ones."""

_PATCH = "$patch"
_RETAIN = "$retainKeys"
_ORDER = "$setElementOrder/"
_DELETE_FROM = "$deleteFromPrimitiveList/"


class StrategicMergeError(ValueError):
    """The patch is malformed (unknown directive, list element without its merge key)."""


class _Deleted:
    """Marker: a `$patch: delete` map removes itself from its parent."""


_DELETED = _Deleted()


def strategic_merge(original: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The result of a strategic merge `patch` on `original` (both left unchanged)."""
    merged = _merge_map(original, patch)
    if isinstance(merged, _Deleted):
        raise StrategicMergeError("a strategic merge patch cannot delete the whole object")
    return merged


def _merge_map(original: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any] | _Deleted:
    directive = patch.get(_PATCH)
    if directive == "delete":
        return _DELETED
    if directive == "replace":
        return _fresh({k: v for k, v in patch.items() if k != _PATCH})
    if directive not in (None, "merge"):
        raise StrategicMergeError(f"unknown patch type: {directive}")
    result = {k: _copy(v) for k, v in original.items()}
    for key, value in patch.items():
        if key.startswith(_DELETE_FROM):
            field = key[len(_DELETE_FROM) :]
            if isinstance(result.get(field), list):
                result[field] = [x for x in result[field] if x not in value]
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        merged = _merge_value(key, result.get(key), value)
        if isinstance(merged, _Deleted):
            result.pop(key, None)
        else:
            result[key] = merged
    for key, order in patch.items():
        field = key[len(_ORDER) :]
        if key.startswith(_ORDER) and isinstance(result.get(field), list):
            result[field] = _reorder(field, result[field], order)
    retained = patch.get(_RETAIN)
    if isinstance(retained, list):
        result = {k: v for k, v in result.items() if k in retained}
    return result


def _merge_value(key: str, original: Any, patch: Any) -> Any:
    if isinstance(patch, Mapping):
        return _merge_map(original if isinstance(original, Mapping) else {}, patch)
    if isinstance(patch, list):
        current = original if isinstance(original, list) else []
        if key in MERGE_KEYS and all(isinstance(e, Mapping) for e in patch):
            return _merge_keyed_list(key, current, patch)
        if key in SET_LISTS:
            return [*current, *(x for x in patch if x not in current)]
        return _fresh_list(patch)
    return patch


def _merge_keyed_list(
    field: str, original: Sequence[Any], patch: Sequence[Mapping[str, Any]]
) -> list[Any]:
    if any(element.get(_PATCH) == "replace" for element in patch):
        return _fresh_list([e for e in patch if set(e) != {_PATCH}])
    merge_key = _merge_key(field, [*original, *patch])
    result = [_copy(e) for e in original]
    for element in patch:
        if merge_key not in element:
            raise StrategicMergeError(
                f"map: {dict(element)} does not contain declared merge key: {merge_key}"
            )
        wanted = element[merge_key]
        index = next(
            (
                i
                for i, e in enumerate(result)
                if isinstance(e, Mapping) and e.get(merge_key) == wanted
            ),
            None,
        )
        if element.get(_PATCH) == "delete":
            if index is not None:
                del result[index]
            continue
        merged = _merge_map(result[index] if index is not None else {}, element)
        if index is None:
            result.append(merged)
        else:
            result[index] = merged
    return result


def _merge_key(field: str, elements: Sequence[Any]) -> str:
    candidates = MERGE_KEYS[field]
    for candidate in candidates:
        if any(isinstance(e, Mapping) and candidate in e for e in elements):
            return candidate
    return candidates[0]


def _reorder(field: str, items: list[Any], order: Any) -> list[Any]:
    """`$setElementOrder`: listed elements first, in the given order, then the rest."""
    if not isinstance(order, list):
        return items
    if field in MERGE_KEYS:
        merge_key = _merge_key(field, [*items, *order])

        def identity(element: Any) -> Any:
            return element.get(merge_key) if isinstance(element, Mapping) else element

        wanted = [identity(o) for o in order]
    else:

        def identity(element: Any) -> Any:
            return element

        wanted = list(order)
    rank = {_hashable(w): i for i, w in enumerate(wanted)}
    listed = sorted(
        (e for e in items if _hashable(identity(e)) in rank),
        key=lambda e: rank[_hashable(identity(e))],
    )
    rest = [e for e in items if _hashable(identity(e)) not in rank]
    return [*listed, *rest]


def _hashable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | None) else repr(value)


def _fresh(value: Mapping[str, Any]) -> dict[str, Any]:
    """A patch map taken as a whole: directives inside it are still interpreted."""
    merged = _merge_map({}, value)
    return {} if isinstance(merged, _Deleted) else merged


def _fresh_list(values: Sequence[Any]) -> list[Any]:
    return [_fresh(v) if isinstance(v, Mapping) else _copy(v) for v in values]


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
