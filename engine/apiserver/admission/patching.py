"""A mutating webhook's answer applied: a base64 JSON patch (RFC 6902, with the
`jsonpatch` library) over the object it was sent. A patch that does not decode or does
not apply is an internal error whatever the failurePolicy, as upstream treats it."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import jsonpatch

from engine.apiserver.admission.client import CallFailed
from engine.apiserver.store.errors import ApiError


def internal_error(message: str) -> ApiError:
    """500 InternalError worded as kube-apiserver's NewInternalError."""
    return ApiError(
        500,
        f"Internal error occurred: {message}",
        reason="InternalError",
        details={"causes": [{"message": message}]},
    )


def patched(obj: dict[str, Any], patch: str, patch_type: str) -> dict[str, Any]:
    """`obj` with the webhook's patch applied (a new object).

    CallFailed for a patch type other than JSONPatch (failurePolicy applies); ApiError 500
    for a patch that is not base64 JSON, not a list of operations, or does not apply."""
    if patch_type != "JSONPatch":
        raise CallFailed(f'unsupported patch type "{patch_type}"')
    try:
        operations = json.loads(base64.b64decode(patch, validate=True))
    except (binascii.Error, ValueError) as bad:
        raise internal_error(f"the webhook's patch is not base64-encoded JSON: {bad}") from None
    if not isinstance(operations, list):
        raise internal_error("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    try:
        result = jsonpatch.JsonPatch(operations).apply(obj)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as bad:
        raise internal_error(str(bad)) from None
    except (TypeError, KeyError, AttributeError, IndexError) as bad:
        raise internal_error(f"invalid JSON patch: {bad}") from None
    if not isinstance(result, dict):
        raise internal_error("the patched object is not a JSON object")
    return result
