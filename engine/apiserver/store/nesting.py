"""How deeply a decoded JSON value nests, measured without recursion.

Request bodies deeper than `MAX_DEPTH` are refused up front: deeper values would exhaust
Python's recursion limit in admission, patching or copying and end as a 500.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 512
TOO_DEEP = f"the request body nests deeper than {MAX_DEPTH} levels: flatten the object"


def nesting_depth(value: Any) -> int:
    """The number of nested objects and arrays on the deepest path of `value`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


def too_deep(value: Any) -> bool:
    """True when `value` nests deeper than `MAX_DEPTH`."""
    return nesting_depth(value) > MAX_DEPTH


def too_deep_json(text: bytes, value: Any) -> bool:
    """`too_deep(value)` for the `value` decoded from the JSON `text`, without the walk
    when `text` is too short to nest that deep (each level takes an opening and a
    closing bracket: deeper than MAX_DEPTH needs 2 * (MAX_DEPTH + 1) bytes or more)."""
    return len(text) >= 2 * (MAX_DEPTH + 1) and too_deep(value)
