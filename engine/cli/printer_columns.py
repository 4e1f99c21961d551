"""The operator's printer columns (CRD `additionalPrinterColumns`) as the live view's
extra columns: their headers, and each object's values read by their `jsonPath`.

Only the simple paths printer columns use are read (`.spec.domain`, `.a.b[0]`); a column
whose path is richer, or whose field the object lacks, shows empty. Columns that repeat
what the view already shows (the phase, the age) are left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_SHOWN_ALREADY = {".status.phase", ".metadata.creationTimestamp"}
_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]")


def extra_columns(columns: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    """The printer columns worth a view column of their own."""
    return tuple(c for c in columns if str(c.get("jsonPath", "")) not in _SHOWN_ALREADY)


def headers(columns: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Column headers, upper-cased as kubectl prints them."""
    return tuple(str(c.get("name", "")).upper() for c in columns)


def values(columns: Sequence[Mapping[str, Any]], obj: Mapping[str, Any] | None) -> tuple[str, ...]:
    """`obj`'s value of each column as text ("" when missing or unreadable)."""
    return tuple(read_path(obj, str(c.get("jsonPath", ""))) for c in columns)


def read_path(obj: Mapping[str, Any] | None, path: str) -> str:
    """The value at a simple JSONPath such as `.spec.replicas` or `.items[0]`, as text."""
    if obj is None or not path.startswith("."):
        return ""
    current: Any = obj
    position = 0
    while position < len(path):
        step = _STEP.match(path, position)
        if step is None:
            return ""
        position = step.end()
        field, index = step.group(1), step.group(2)
        if field is not None and isinstance(current, Mapping):
            current = current.get(field)
        elif index is not None and isinstance(current, list) and int(index) < len(current):
            current = current[int(index)]
        else:
            return ""
        if current is None:
            return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    if isinstance(current, (dict, list)):
        return ""
    return str(current)
