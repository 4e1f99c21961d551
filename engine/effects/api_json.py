"""JSON of the Kubernetes API's requests and answers, by orjson where it gives exactly
what the standard library would.

`loads` is `json.loads`: orjson reads the text unless the text holds a run of 19 or more
digits (an integer beyond 64 bits, which orjson would turn into a float, or a number
with more digits than a float keeps) or orjson refuses it (a lone surrogate escape,
which the standard library accepts); then the standard library reads it, and raises
its own `ValueError` on bad JSON. `dumps` is a request body as UTF-8 bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import orjson

_LONG_NUMBER = re.compile(rb"\d{19}")


def loads(text: bytes) -> Any:
    """The value of the JSON `text`, as `json.loads` gives it. Errors: `ValueError`."""
    if _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def dumps(body: Mapping[str, Any]) -> bytes:
    """`body` as JSON bytes. Errors: `TypeError` for a value JSON cannot hold (a date:
    the caller's own conversion decides how it is written)."""
    try:
        return orjson.dumps(body, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:  # a huge integer, a lone surrogate, a key that is not text
        return json.dumps(body).encode()
