"""Verifying and decoding stored rows at full speed, for reads of a whole journal.

The same checksum over the same bytes as `codec` (tested against it); `data` decoded
by orjson, except where orjson could read it differently from the stdlib (an integer
beyond 64 bits, which orjson turns into a float; what orjson refuses, such as a lone
surrogate), so the `Record`s are exactly those of `codec.verified_record`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from hashlib import sha256
from typing import Any

import orjson

from engine.journal.errors import CorruptJournal
from engine.journal.record import Record

_NONE = "\x01"


def decode_data(text: str) -> Any:
    """`json.loads(text)`, faster where that gives the same value.

    orjson's value is kept when it encodes back to `text` itself (sorted keys, compact:
    the canonical form of every stored payload); a huge integer read as a float, or a
    float orjson writes differently, does not, and the stdlib decodes it instead.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # it may accept it (a lone surrogate) or say why not
    if orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == text.encode():
        return value
    return json.loads(text)


class RowDecoder:
    """Turns stored rows of the journal `where` into verified `Record`s.

    Remembers the last `at` text it parsed: the records of one commit share it.
    """

    def __init__(self, where: str) -> None:
        self._where = where
        self._at_text = ""
        self._at: datetime | None = None

    def check(self, previous: str, row: Sequence[Any]) -> None:
        """Raise `CorruptJournal` unless `row`'s checksum chains to `previous`."""
        position, stream, version, type_, schema, at, data, key, trace, span, term, digest = row
        text = "\x00".join(
            (
                previous,
                str(position),
                stream,
                str(version),
                type_,
                str(schema),
                at,
                _NONE if key is None else key,
                _NONE if trace is None else trace,
                _NONE if span is None else span,
                str(term),
                data,
            )
        )
        if sha256(text.encode()).hexdigest() != digest:
            raise CorruptJournal(self._where, "the record's checksum does not match", position)

    def verified(self, previous: str, row: Sequence[Any]) -> Record:
        """The `Record` of `row` once its checksum is checked against `previous`.

        Errors: `CorruptJournal` naming the position (bad checksum, undecodable row).
        """
        self.check(previous, row)
        try:
            at_text = row[5]
            if at_text != self._at_text:
                self._at, self._at_text = datetime.fromisoformat(at_text), at_text
            assert self._at is not None
            return Record(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                self._at,
                decode_data(row[6]),
                row[7],
                row[8],
                row[9],
                row[10],
                row[11],
            )
        except ValueError as bad:
            raise CorruptJournal(
                self._where, f"the record does not decode ({bad})", row[0]
            ) from None
