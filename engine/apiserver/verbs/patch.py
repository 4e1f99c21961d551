"""Apply a PATCH body to an object, dispatched on its Content-Type, as Kubernetes does.

JSON merge patch (RFC 7386), JSON patch (RFC 6902, via jsonpatch), strategic merge patch
for built-in kinds (see strategic_merge) and a minimal server-side apply (a merge of the
JSON or YAML apply configuration). Pure: no I/O; never mutates its inputs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import jsonpatch
import jsonpointer
import yaml

from engine.apiserver.store.json_copy import json_copy, json_loads
from engine.apiserver.store.nesting import TOO_DEEP, too_deep_json
from engine.apiserver.verbs.strategic_merge import StrategicMergeError, strategic_merge

MERGE, JSON_PATCH, STRATEGIC, APPLY = (
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
PATCH_TYPES = (MERGE, JSON_PATCH, STRATEGIC, APPLY)


class PatchError(Exception):
    """A patch that cannot be applied: `code` 400/415/422 with the Status `reason`.

    `str(error)` is the human-readable message.
    """

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


def apply_patch(
    obj: Mapping[str, Any], body: bytes, content_type: str, *, custom_resource: bool
) -> dict[str, Any]:
    """The object that results from applying `body` (of `content_type`) to `obj`.

    `content_type` may carry parameters (`;charset=utf-8`). Errors (all `PatchError`):
    an unknown type, or strategic merge on a custom resource -> 415 UnsupportedMediaType;
    a body that does not decode, a JSON patch that is not an array, or a merge/apply body
    that is not an object -> 400 BadRequest; a JSON patch whose `test` fails or whose path
    does not resolve, or a result that is not an object -> 422 Invalid. Returns a new
    object sharing nothing with `obj`.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in PATCH_TYPES:
        supported = ", ".join(f'"{t}"' for t in PATCH_TYPES)
        raise PatchError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types "
            f'include: {supported} (got "{media_type}")',
        )
    original = json_copy(dict(obj))
    if media_type == JSON_PATCH:
        return _json_patch(original, _decode_json(body))
    if media_type == APPLY:
        return _merge_object(original, _object_body(_decode_apply(body), "apply"))
    patch_body = _object_body(_decode_json(body), "merge")
    if media_type == MERGE:
        return _merge_object(original, patch_body)
    if custom_resource:
        raise PatchError(
            415,
            "UnsupportedMediaType",
            "strategic merge patch is not supported for custom resources; use "
            f'"{MERGE}" or "{JSON_PATCH}"',
        )
    try:
        return strategic_merge(original, patch_body)
    except StrategicMergeError as bad:
        raise PatchError(422, "Invalid", str(bad)) from None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, else replace.

    Returns a new value; `target` is not changed (values it shares are copied).
    """
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = {k: copy.deepcopy(v) for k, v in target.items()} if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_object(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`merge_patch(original, patch)` made in place: both are private to the caller (a
    copy of the stored object and a freshly decoded body), so nothing is copied again."""
    for key, value in patch.items():
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict):
            current = original.get(key)
            original[key] = _merge_object(current if isinstance(current, dict) else {}, value)
        else:
            original[key] = value
    return original


def _decode_json(body: bytes) -> Any:
    try:
        value = json_loads(body)
    except RecursionError:
        raise PatchError(400, "BadRequest", TOO_DEEP) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as bad:
        raise PatchError(400, "BadRequest", f"error decoding patch: {bad}") from None
    if too_deep_json(body, value):
        raise PatchError(400, "BadRequest", TOO_DEEP)
    return value


def _object_body(value: Any, kind: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PatchError(
            400,
            "BadRequest",
            f"error decoding {kind} patch: expected a JSON object, got {_json_type(value)}",
        )
    return value


def _json_patch(original: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise PatchError(
            400,
            "BadRequest",
            "json patch must be a JSON array of operations, got " + _json_type(operations),
        )
    for index, op in enumerate(operations):
        if not isinstance(op, dict):
            raise PatchError(400, "BadRequest", f"json patch operation {index} is not an object")
    try:
        result = jsonpatch.JsonPatch(operations).apply(original, in_place=True)
    except jsonpatch.JsonPatchTestFailed as failed:
        raise PatchError(422, "Invalid", f"json patch test operation failed: {failed}") from None
    except jsonpatch.InvalidJsonPatch as bad:
        raise PatchError(422, "Invalid", f"invalid json patch operation: {bad}") from None
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as bad:
        raise PatchError(422, "Invalid", f"json patch cannot be applied: {bad}") from None
    except (KeyError, IndexError, TypeError, ValueError) as bad:
        raise PatchError(422, "Invalid", f"json patch cannot be applied: {bad}") from None
    if not isinstance(result, dict):
        raise PatchError(
            422, "Invalid", "json patch result must be a JSON object, got " + _json_type(result)
        )
    return result


class _ApplyLoader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as strings (Kubernetes YAML has no timestamp type)."""


_ApplyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _decode_apply(body: bytes) -> Any:
    try:
        value = json_loads(body)
    except RecursionError:
        raise PatchError(400, "BadRequest", TOO_DEEP) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    else:
        if too_deep_json(body, value):
            raise PatchError(400, "BadRequest", TOO_DEEP)
        return value
    try:
        loaded = yaml.load(body, Loader=_ApplyLoader)  # a SafeLoader subclass
    except RecursionError:
        raise PatchError(400, "BadRequest", TOO_DEEP) from None
    except yaml.YAMLError as bad:
        raise PatchError(400, "BadRequest", f"error decoding YAML apply patch: {bad}") from None
    return _as_json(loaded)


def _as_json(value: Any) -> Any:
    """YAML values as JSON would have them: string keys, no binary or set types."""
    if isinstance(value, dict):
        return {_json_key(k): _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise PatchError(
        400, "BadRequest", f"error decoding YAML apply patch: unsupported value {value!r}"
    )


def _json_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, str | int | float):
        return str(key)
    raise PatchError(400, "BadRequest", f"error decoding YAML apply patch: unsupported key {key!r}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
    }.get(type(value), type(value).__name__)
