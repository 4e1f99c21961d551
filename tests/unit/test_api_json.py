"""The Kubernetes API's JSON is read exactly as the standard library reads it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from engine.effects import api_json


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b'{"spec":{"size":7,"ratio":0.25,"name":"w\\u00e9","on":true}}', id="plain"),
        pytest.param(b'{"n":123456789012345678901234567890}', id="beyond-64-bits"),
        pytest.param(b'{"n":-9223372036854775809}', id="below-int64"),
        pytest.param(b'{"n":10000000000000000000}', id="zeros-beyond-64-bits"),
        pytest.param(b'{"n":18446744073709551616,"s":"9"}', id="every-digit-beyond-64-bits"),
        pytest.param(b'{"f":0.1000000000000000055511151231257827}', id="many-digits"),
        pytest.param(b'{"s":"\\ud800"}', id="lone-surrogate"),
        pytest.param(b"[1e-07, 1E+400, -0.0, null]", id="exponents"),
    ],
)
def test_loads_gives_what_the_standard_library_gives(text: bytes) -> None:
    value = api_json.loads(text)
    assert value == json.loads(text)
    assert json.dumps(value) == json.dumps(json.loads(text))  # same types, same digits


@pytest.mark.parametrize("text", [b"{", b"", b'{"a":NaN'])
def test_loads_refuses_bad_json_with_a_value_error(text: bytes) -> None:
    with pytest.raises(ValueError, match=r"Expecting|NaN|Extra data|char"):
        api_json.loads(text)


def test_dumps_writes_json_and_leaves_dates_to_the_caller() -> None:
    body = {"metadata": {"name": "w"}, "n": 2**70, "s": "\ud800"}
    assert json.loads(api_json.dumps(body)) == body
    with pytest.raises(TypeError):
        api_json.dumps({"at": datetime(2026, 1, 1, tzinfo=UTC)})
