"""Deep copies of decoded JSON values, and request bodies decoded, through orjson.

Objects, patches and schema defaults are plain JSON values (dicts, lists, strings,
numbers, booleans, None). Encoding one with orjson and decoding the bytes makes a copy
that shares nothing with the original, several times faster than `copy.deepcopy`, which
pays for generality (memo, reductions) these values never need.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, TypeVar

import orjson

T = TypeVar("T")
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
"""An integer of 19 digits or more may not fit in 64 bits, and orjson would decode it as
a float: such a body goes to `json`, which keeps every integer exact."""


def json_loads(text: bytes) -> Any:
    """`json.loads(text)`: the same value, or the same exception (ValueError,
    UnicodeDecodeError, RecursionError), several times faster for ordinary bodies.

    orjson decodes what it can; what it refuses (a UTF-8 BOM or another encoding, a lone
    surrogate, NaN, a number beyond a double, nesting past its limit, any malformed body)
    and any body with a run of 19 digits go to `json` as before.
    """
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def json_copy(value: T) -> T:
    """A copy of the JSON value `value` sharing nothing with it.

    What orjson refuses (an integer beyond 64 bits, a key that is not a string) is copied
    by `copy.deepcopy` instead. A tuple comes back a list and a float that is not finite
    comes back None, as they do in every body the server writes (`errors.dumps`).
    """
    try:
        copied: T = orjson.loads(orjson.dumps(value))
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return copy.deepcopy(value)
    return copied
