"""How much of a spec an `Observed` record keeps: the whole spec when its canonical JSON is
small and shallow, else an excerpt of field names and sizes (the digest is always there), so
a 1.4 MiB or deeply nested spec neither bloats the journal nor overflows the encoder; nor
does a spec the journal cannot hold as JSON (not an object, or NaN or Infinity in it, which
a lenient decoder accepts) make the record unwritable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

MAX_STORED_SPEC_BYTES: Final = 64 * 1024
"""A spec whose canonical JSON (UTF-8) is longer than this is stored as an excerpt."""
MAX_STORED_SPEC_DEPTH: Final = 64
"""A spec nested deeper than this is stored as an excerpt (JSON and redaction recurse)."""
MAX_EXCERPT_FIELDS: Final = 64
"""How many top-level field names (with their sizes) an excerpt lists."""


def nesting_depth(value: Any, *, limit: int) -> int:
    """How deeply objects and lists nest in `value` (a scalar is 0), counted without
    recursion; counting stops past `limit` (the answer is then `limit + 1`)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        depth += 1
        if depth > limit:
            return limit + 1
        deepest = max(deepest, depth)
        pending.extend((child, depth) for child in children)
    return deepest


def stored_spec(spec: Any) -> dict[str, Any]:
    """The spec fields of an `Observed` payload.

    Either `{"spec": <the spec>}`, or, for a spec over `MAX_STORED_SPEC_BYTES` or
    `MAX_STORED_SPEC_DEPTH`, or that is not strict JSON (NaN, Infinity), `{"spec": None,
    "spec_truncated": True, "spec_chars": n, "spec_fields": {field: chars, ...}}`: the
    length of its canonical JSON and of each top-level field's (-1 when too deep to
    encode), at most `MAX_EXCERPT_FIELDS` fields; a spec that is not an object has no
    fields. The excerpt holds names and sizes, never values: the journal's redaction
    cannot see into a text excerpt, and a value may be a secret. Never raises for
    JSON-like input.
    """
    if not isinstance(spec, Mapping):
        return {"spec": None, "spec_truncated": True, "spec_chars": _json_chars(spec),
                "spec_fields": {}}  # fmt: skip
    if nesting_depth(spec, limit=MAX_STORED_SPEC_DEPTH) <= MAX_STORED_SPEC_DEPTH:
        strict = _strict_json_chars(spec)
        if strict is not None and strict <= MAX_STORED_SPEC_BYTES:
            return {"spec": dict(spec)}
        size = _json_chars(spec) if strict is None else strict
    else:
        size = -1
    fields = {
        str(name): _json_chars(value)
        if nesting_depth(value, limit=MAX_STORED_SPEC_DEPTH) <= MAX_STORED_SPEC_DEPTH
        else -1
        for name, value in sorted(spec.items(), key=lambda item: str(item[0]))[:MAX_EXCERPT_FIELDS]
    }
    return {"spec": None, "spec_truncated": True, "spec_chars": size, "spec_fields": fields}


def _strict_json_chars(value: Any) -> int | None:
    """The length of `value`'s canonical JSON; None when it holds NaN or Infinity."""
    try:
        return len(
            json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, allow_nan=False)
        )
    except ValueError:
        return None


def _json_chars(value: Any) -> int:
    return len(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str))
