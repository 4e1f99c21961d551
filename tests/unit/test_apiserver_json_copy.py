"""Copies of JSON values for the API server's write path: equal, sharing nothing, and
exact for what orjson refuses; bodies decoded as the standard library decodes them."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from engine.apiserver.store.json_copy import json_copy, json_loads


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


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b'{"a":1,"b":[true,null,"x"],"c":{"d":-0.5}}', id="ordinary"),
        pytest.param(b'{"n":18446744073709551616}', id="integer-beyond-64-bits"),
        pytest.param(b'{"n":-9223372036854775809}', id="negative-integer-beyond-64-bits"),
        pytest.param(b'{"f":0.1234567890123456789012}', id="long-mantissa"),
        pytest.param(b'\xef\xbb\xbf{"a":1}', id="utf-8-bom"),
        pytest.param('{"a":"\u00e9"}'.encode("utf-16"), id="utf-16"),
        pytest.param(b'{"a":"\\ud800"}', id="lone-surrogate"),
        pytest.param(b'{"a":1E400}', id="beyond-a-double"),
        pytest.param(b'{"a":1,"a":2}', id="duplicate-key-the-last-wins"),
    ],
)
def test_a_body_decodes_to_exactly_what_the_standard_library_gives(text: bytes) -> None:
    decoded, expected = json_loads(text), json.loads(text)
    assert repr(decoded) == repr(expected)  # repr: 2**64 and 2.0**64 compare equal


def test_nan_decodes_as_the_standard_library_decodes_it() -> None:
    assert math.isnan(json_loads(b'{"a":NaN}')["a"])


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'{"a":1}x', id="trailing-garbage"),
        pytest.param(b'{"a":01}', id="leading-zero"),
        pytest.param(b'{"\xff":1}', id="invalid-utf-8"),
    ],
)
def test_a_bad_body_raises_what_the_standard_library_raises(text: bytes) -> None:
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)) as ours:
        json_loads(text)
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)) as theirs:
        json.loads(text)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)
