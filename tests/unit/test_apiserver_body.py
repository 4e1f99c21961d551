"""Request bodies: nesting too deep is a clear 400, never a 500 (an F case)."""

from __future__ import annotations

import pytest

from engine.apiserver.http.body import decode_object
from engine.apiserver.store.errors import ApiError
from engine.apiserver.store.nesting import MAX_DEPTH, nesting_depth


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
