"""Request bodies: nesting too deep is a clear 400, never a 500 (an F case), with the walk
that measures it skipped only where the text is too short to nest that deep."""

from __future__ import annotations

import json

import pytest

from engine.apiserver.http.body import decode_object
from engine.apiserver.store.errors import ApiError
from engine.apiserver.store.nesting import MAX_DEPTH, nesting_depth, too_deep_json


def _nested(depth: int) -> bytes:
    return b'{"spec":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


@pytest.mark.parametrize(
    "depth",
    [
        pytest.param(MAX_DEPTH + 10, id="over-the-limit"),
        pytest.param(5000, id="past-the-json-recursion-limit"),
    ],
)
def test_a_body_nested_too_deeply_is_a_400(depth: int) -> None:
    with pytest.raises(ApiError) as raised:
        decode_object(_nested(depth), "application/json", strict=True)
    assert raised.value.code == 400
    assert "nests deeper than" in str(raised.value.status())


def test_a_body_at_a_normal_depth_decodes() -> None:
    assert decode_object(_nested(50), "application/json", strict=True)["spec"]["a"]["a"]


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        pytest.param(1, 0, id="scalar"),
        pytest.param({}, 1, id="empty-object"),
        pytest.param({"a": [1, {"b": []}]}, 4, id="mixed"),
    ],
)
def test_nesting_depth_counts_objects_and_arrays(value: object, depth: int) -> None:
    assert nesting_depth(value) == depth


def test_the_shortest_text_one_level_too_deep_is_still_walked_and_refused() -> None:
    # depth MAX_DEPTH + 1 in the fewest bytes: exactly the length under which the walk
    # is skipped, plus nothing
    text = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    assert too_deep_json(text, json.loads(text))
    shallower = text[1:-1]
    assert not too_deep_json(shallower, json.loads(shallower))


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "not-strict"])
def test_a_body_one_level_too_deep_is_a_400_and_one_level_less_decodes(strict: bool) -> None:
    def nested(depth: int) -> bytes:  # an object holding depth - 1 nested arrays
        return b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"

    with pytest.raises(ApiError) as raised:
        decode_object(nested(MAX_DEPTH + 1), "application/json", strict=strict)
    assert raised.value.code == 400
    assert "nests deeper than" in str(raised.value.status())
    decoded = decode_object(nested(MAX_DEPTH), "application/json", strict=strict)
    assert nesting_depth(decoded) == MAX_DEPTH
