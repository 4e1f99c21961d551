"""Decode request bodies: JSON (optionally checking for duplicate fields) or YAML; answer
protobuf with 415 and the working alternative."""

from __future__ import annotations

import json
from typing import Any

import yaml

from engine.apiserver.store.errors import ApiError
from engine.apiserver.store.json_copy import json_loads
from engine.apiserver.store.nesting import TOO_DEEP, too_deep, too_deep_json

PROTOBUF = "application/vnd.kubernetes.protobuf"
PROTOBUF_MESSAGE = (
    "this server does not accept protobuf request bodies (Content-Type "
    f"{PROTOBUF}); kubectl's generator commands send protobuf, so generate the object "
    "on the client and apply it instead, e.g. `kubectl create configmap NAME --from-literal=k=v "
    "--dry-run=client -o yaml | kubectl apply -f -`"
)


def media_type(content_type: str) -> str:
    """The media type without parameters, lower-cased."""
    return content_type.split(";", 1)[0].strip().lower()


def decode_object(raw: bytes, content_type: str, *, strict: bool) -> dict[str, Any]:
    """The request body as an object; ApiError 400 on bad input, 415 on protobuf.

    With `strict`, duplicate JSON fields are a 400 ("strict decoding error").
    """
    kind = media_type(content_type or "application/json")
    if kind == PROTOBUF:
        raise ApiError(415, PROTOBUF_MESSAGE)
    try:
        yaml_body = kind in ("application/yaml", "application/x-yaml", "text/yaml")
        if yaml_body:
            parsed: Any = yaml.safe_load(raw.decode())
        elif kind in ("application/json", "*/*", "") and strict:
            parsed = json.loads(raw, object_pairs_hook=_reject_duplicates)
        elif kind in ("application/json", "*/*", ""):
            parsed = json_loads(raw)
        else:
            raise ApiError(415, f"the body of the request was in an unknown format: {kind}")
    except RecursionError:
        raise ApiError(400, TOO_DEEP) from None
    except (ValueError, yaml.YAMLError) as bad:
        if isinstance(bad, _DuplicateField):
            raise ApiError(400, f'strict decoding error: duplicate field "{bad}"') from None
        raise ApiError(400, f"the request body is not valid JSON or YAML: {bad}") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "the request body must be a JSON object")
    if too_deep(parsed) if yaml_body else too_deep_json(raw, parsed):
        raise ApiError(400, TOO_DEEP)
    return parsed


class _DuplicateField(ValueError):
    pass


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateField(key)
        seen[key] = value
    return seen
