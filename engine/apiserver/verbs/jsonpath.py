"""The JSONPath subset CRD printer columns use, evaluated over decoded JSON.

Supported: `.field`, `['field']`, `[N]` (negative counts from the end), `[*]` / `.*`,
and filters `[?(@.a.b == "x")]`, `!=`, numeric and boolean literals, and `[?(@.a)]`;
an optional leading `$` and surrounding `{}`. Anything else raises UnsupportedPath.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_STEP = re.compile(
    r"""
      \.(?P<name>[^.\[\]\s]+)
    | \[\s*'(?P<single>[^']*)'\s*\]
    | \[\s*"(?P<double>[^"]*)"\s*\]
    | \[\s*(?P<index>-?\d+)\s*\]
    | \[\s*(?P<star>\*)\s*\]
    | \[\s*\?\(\s*@(?P<path>(?:\.[^.\s=!)\[\]]+)+)\s*
        (?:(?P<op>==|!=)\s*(?P<literal>"[^"]*"|'[^']*'|-?\d+(?:\.\d+)?|true|false))?
      \s*\)\s*\]
    """,
    re.VERBOSE,
)
_MISSING = object()


class UnsupportedPath(ValueError):
    """The expression is outside the supported JSONPath subset."""


def evaluate(expression: str, document: Any) -> list[Any]:
    """Every value `expression` selects in `document`, in document order ([] if none)."""
    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    if not text:
        raise UnsupportedPath(f"empty JSONPath {expression!r}")
    nodes = [document]
    position = 0
    while position < len(text):
        step = _STEP.match(text, position)
        if step is None:
            raise UnsupportedPath(f"unsupported JSONPath {expression!r} at {text[position:]!r}")
        nodes = [found for node in nodes for found in _apply(step, node)]
        position = step.end()
    return nodes


def _apply(step: re.Match[str], node: Any) -> list[Any]:
    name = step.group("name")
    if name == "*" or step.group("star"):
        if isinstance(node, list):
            return list(node)
        return list(node.values()) if isinstance(node, Mapping) else []
    key = name if name is not None else step.group("single")
    key = key if key is not None else step.group("double")
    if key is not None:
        return [node[key]] if isinstance(node, Mapping) and key in node else []
    if step.group("index") is not None:
        index = int(step.group("index"))
        if isinstance(node, list) and -len(node) <= index < len(node):
            return [node[index]]
        return []
    if not isinstance(node, list):
        return []
    path = step.group("path")[1:].split(".")
    operator, literal = step.group("op"), step.group("literal")
    return [item for item in node if _keeps(item, path, operator, literal)]


def _keeps(item: Any, path: list[str], operator: str | None, literal: str | None) -> bool:
    value: Any = item
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            value = _MISSING
            break
        value = value[part]
    if operator is None or literal is None:
        return value is not _MISSING
    equal = value is not _MISSING and _literal_equals(value, literal)
    return equal if operator == "==" else not equal


def _literal_equals(value: Any, literal: str) -> bool:
    if literal[0] in "\"'":
        return isinstance(value, str) and value == literal[1:-1]
    if literal in ("true", "false"):
        return isinstance(value, bool) and value == (literal == "true")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    number: float = json.loads(literal)
    return bool(value == number)
