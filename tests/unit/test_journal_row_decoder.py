"""The fast row decoder gives exactly the records of `codec.verified_record`: the same
checksum over the same bytes, and the same decoded values (orjson only where it agrees)."""

from __future__ import annotations

import hashlib
import json

import pytest

from engine.bench.lifecycle_rows import lifecycle_rows
from engine.journal import CorruptJournal, NewEvent
from engine.journal.codec import GENESIS, encode_event, make_row, verified_record
from engine.journal.row_decoder import RowDecoder, checksum, decode_data


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"n": 123456789012345678901234567890}, id="integer-beyond-64-bits"),
        pytest.param({"n": 18446744073709551615, "m": -9223372036854775808}, id="64-bit-edges"),
        pytest.param({"s": "\ud800"}, id="lone-surrogate"),
        pytest.param({"f": [1e-05, 1e16, 0.1, -0.0, 2.5]}, id="float-forms"),
        pytest.param({"é": "日本語 ✓", "esc": "\x1b[31m\n"}, id="unicode-and-controls"),
        pytest.param({"b": [True, False, None, {}, []]}, id="literals"),
    ],
)
def test_odd_payloads_decode_as_the_stdlib_decodes_them(payload: dict[str, object]) -> None:
    text = encode_event(NewEvent("Observed", payload)).data
    decoded = decode_data(text)
    assert decoded == json.loads(text)
    assert repr(decoded) == repr(json.loads(text))  # same types: an int stays an int


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"b":1,"a":{"d":2,"c":3}}', id="unsorted-keys"),
        pytest.param('{"a":1,"b":2,"a":3}', id="duplicate-key"),
        pytest.param('{ "a" : [1, 2] }', id="spaces"),
        pytest.param(
            '{"f":[1E5,1e+16,1.50,0.1000000000000000055511151231257827,5e-324]}', id="floats"
        ),
        pytest.param('{"n":[18446744073709551616,-9223372036854775809,1.0e19]}', id="past-64-bits"),
        pytest.param('{"n":NaN,"i":-Infinity}', id="non-finite"),
        pytest.param('{"s":"\\u00e9\\u0000\\/"}', id="escapes"),
        pytest.param("[" * 300 + "]" * 300, id="nested-deeper-than-orjson-writes"),
    ],
)
def test_any_text_decodes_as_the_stdlib_decodes_it(text: str) -> None:
    # stored payloads are canonical, but a row is decoded for whatever text it holds
    # (compared by repr: the same types and key order, and NaN, which is unequal to itself)
    assert repr(decode_data(text)) == repr(json.loads(text))


def test_lifecycle_rows_give_the_records_of_the_reference_decoder() -> None:
    decoder = RowDecoder("journal.db")
    previous = GENESIS
    for row in lifecycle_rows(3_000):
        assert decoder.verified(previous, row) == verified_record("journal.db", previous, row)
        previous = row.checksum


def test_a_changed_row_fails_its_checksum_naming_the_position() -> None:
    row = make_row(
        GENESIS,
        position=1,
        stream="s",
        stream_version=1,
        event=encode_event(NewEvent("Observed", {"a": 1})),
        at="2026-01-01T00:00:00.000000+00:00",
        term=1,
    )
    changed = row._replace(data='{"a":2}')
    with pytest.raises(CorruptJournal, match="at position 1: the record's checksum"):
        RowDecoder("journal.db").verified(GENESIS, changed)


@pytest.mark.parametrize(
    ("key", "trace", "span"),
    [
        (None, None, None),
        ("", "", ""),
        ("uid:1:provision", "ab" * 16, "cd" * 8),
        ("\x01", None, "é"),
    ],
)
def test_the_checksum_is_the_sha256_of_the_nul_joined_columns(
    key: str | None, trace: str | None, span: str | None
) -> None:
    # the stored format, spelled out: a None column is \x01, an empty one stays empty
    row = (7, "g/K/ns/n#u", 3, "Observed", 1, "2026-01-01T00:00:00.000000+00:00")
    data = '{"a":"日本語"}'
    columns = (*row, data, key, trace, span, 2)
    fields = [GENESIS, *map(str, row), *("\x01" if v is None else v for v in (key, trace, span))]
    text = "\x00".join([*fields, "2", data])
    assert checksum(GENESIS, columns) == hashlib.sha256(text.encode()).hexdigest()
    assert checksum(GENESIS, columns) != checksum(GENESIS, (*columns[:7], "x", *columns[8:]))
