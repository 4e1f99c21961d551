"""Copies of JSON values for the API server's write path: equal, sharing nothing, and
exact for what orjson refuses."""

from __future__ import annotations

from typing import Any

from engine.apiserver.store.json_copy import json_copy


def _containers(value: Any) -> list[Any]:
    found = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            found.append(item)
            stack.extend(item)
    return found


def test_a_copy_is_equal_and_shares_no_container() -> None:
    obj = {
        "metadata": {"name": "w", "labels": {"a": "b"}, "finalizers": ["x"]},
        "spec": {"size": 3, "ratio": 0.5, "on": True, "none": None, "items": [{"k": [1, 2]}]},
    }
    copied = json_copy(obj)
    assert copied == obj
    originals = {id(c) for c in _containers(obj)}
    assert not originals & {id(c) for c in _containers(copied)}


def test_what_orjson_refuses_is_still_copied_exactly() -> None:
    obj = {"spec": {"big": 2**70, "nested": {"n": -(2**65)}}, "keys": {1: "int key"}}
    copied = json_copy(obj)
    assert copied == obj
    assert copied["spec"]["nested"] is not obj["spec"]["nested"]
