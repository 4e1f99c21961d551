"""Verifying and decoding stored rows at full speed, for reads of a whole journal.

The same checksum over the same bytes as `codec` (tested against it); `data` decoded
by orjson, and by the stdlib wherever orjson could read it differently (an integer
beyond 64 bits, which orjson turns into a float; what orjson refuses, such as a lone
surrogate), so the `Record`s are exactly those of `codec.verified_record`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from hashlib import sha256
from typing import Any

import orjson

from engine.journal.errors import CorruptJournal
from engine.journal.record import Record

_NONE = "\x01"
_AT_CACHE = 4096
"""How many `at` texts a decoder keeps parsed (the records of one commit share theirs)."""
_SHA256 = sha256()
"""An empty sha256, never updated: each checksum starts from a copy of it."""
_new = object.__new__
_set = object.__setattr__


def decode_data(text: str) -> Any:
    """`json.loads(text)`, faster where that gives the same value.

    orjson's value is kept when orjson writes it back as `text` itself: then every
    integer in it fits 64 bits (a longer one orjson reads as a float, which it writes
    with a fraction or an exponent) and every float is in its shortest round-trip form,
    which any correctly rounded reader, the stdlib's included, reads as the same float.
    Keys keep the text's order in both readers, so the keys need not be sorted for the
    comparison (sorting them cost a third of the decode); a duplicate key makes the text
    longer than orjson's and so goes to the stdlib. Anything else (what orjson refuses,
    such as a lone surrogate; a float written otherwise; arrays or objects nested deeper
    than orjson writes) is decoded by the stdlib.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # it may accept it (a lone surrogate) or say why not
    try:
        if orjson.dumps(value) == text.encode():
            return value
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (it reads deeper)
        pass
    return json.loads(text)


def checksum(previous: str, row: Sequence[Any]) -> str:
    """The sha256 (hex) a stored row must carry after `previous`: `codec`'s, over the
    NUL-joined text of its columns (None as \\x01), `data` last, as stored.

    One f-string (no `str()` call or tuple per row), hashed by a copy of an empty
    sha256 (with OpenSSL 3 a new hash object costs more than the copy of one)."""
    position, stream, version, type_, schema, at, data, key, trace, span, term = row[:11]
    hashed = _SHA256.copy()
    hashed.update(
        f"{previous}\x00{position}\x00{stream}\x00{version}\x00{type_}\x00{schema}\x00{at}\x00"
        f"{_NONE if key is None else key}\x00{_NONE if trace is None else trace}\x00"
        f"{_NONE if span is None else span}\x00{term}\x00{data}".encode()
    )
    return hashed.hexdigest()


class RowDecoder:
    """Turns stored rows of the journal `where` into verified `Record`s.

    A row is the twelve stored columns in `schema.COLUMNS` order (more are ignored).
    Keeps the `at` texts it parsed: the records of one commit share theirs.
    """

    def __init__(self, where: str) -> None:
        self._where = where
        self._moments: dict[str, datetime] = {}

    def check(self, previous: str, row: Sequence[Any]) -> None:
        """Raise `CorruptJournal` unless `row`'s checksum chains to `previous`."""
        if checksum(previous, row) != row[11]:
            raise CorruptJournal(self._where, "the record's checksum does not match", row[0])

    def check_chain(
        self, batches: Iterable[Sequence[Sequence[Any]]], *, previous: str, position: int
    ) -> tuple[str, int]:
        """Check rows that follow `position` (checksum `previous`) with no gap, in
        position order, given in batches; return the last checksum and position.

        One tight loop over the stored text (the `checksum` of every row).
        Errors: `CorruptJournal` for a gap ("a record is missing") or a bad checksum."""
        where = self._where
        for rows in batches:
            for row in rows:
                number, digest = row[0], row[11]
                if number != position + 1:
                    raise CorruptJournal(where, "a record is missing", position + 1)
                if checksum(previous, row) != digest:
                    raise CorruptJournal(where, "the record's checksum does not match", number)
                previous, position = digest, number
        return previous, position

    def check_text_chain(
        self, batches: Iterable[Sequence[tuple[int, str, bytes]]], *, previous: str, position: int
    ) -> tuple[str, int]:
        """`check_chain` over (position, checksum, covered text) rows, the text being what
        `checksum` hashes after the previous checksum, as UTF-8 (SQLite joins it:
        `offline_reader.CHECKSUM_TEXTS`); return the last checksum and position.

        Errors: `CorruptJournal` for a gap ("a record is missing") or a bad checksum."""
        where = self._where
        for rows in batches:
            for number, digest, text in rows:
                if number != position + 1:
                    raise CorruptJournal(where, "a record is missing", position + 1)
                hashed = _SHA256.copy()
                hashed.update(previous.encode())
                hashed.update(text)
                if hashed.hexdigest() != digest:
                    raise CorruptJournal(where, "the record's checksum does not match", number)
                previous, position = digest, number
        return previous, position

    def verified(self, previous: str, row: Sequence[Any]) -> Record:
        """The `Record` of `row` once its checksum is checked against `previous`.

        Errors: `CorruptJournal` naming the position (bad checksum, undecodable row).
        """
        position, stream, version, type_, schema, at, data, key, trace, span, term, digest = row[
            :12
        ]
        # `checksum`, inline: the columns are unpacked once, for both (a replay's hot path)
        hashed = _SHA256.copy()
        hashed.update(
            f"{previous}\x00{position}\x00{stream}\x00{version}\x00{type_}\x00{schema}\x00{at}\x00"
            f"{_NONE if key is None else key}\x00{_NONE if trace is None else trace}\x00"
            f"{_NONE if span is None else span}\x00{term}\x00{data}".encode()
        )
        if hashed.hexdigest() != digest:
            raise CorruptJournal(self._where, "the record's checksum does not match", position)
        try:
            moment = self._moments.get(at)
            if moment is None:
                moment = self._moment(at)
            record: Record = _new(Record)
            # a Record keeps its fields in its instance dict (see `Record`): set at once
            _set(
                record,
                "__dict__",
                {
                    "position": position,
                    "stream": stream,
                    "stream_version": version,
                    "type": type_,
                    "schema": schema,
                    "at": moment,
                    "data": decode_data(data),
                    "idempotency_key": key,
                    "trace_id": trace,
                    "span_id": span,
                    "term": term,
                    "checksum": digest,
                },
            )
            return record
        except ValueError as bad:
            raise CorruptJournal(
                self._where, f"the record does not decode ({bad})", position
            ) from None

    def _moment(self, at: str) -> datetime:
        if len(self._moments) >= _AT_CACHE:
            self._moments.clear()
        moment = self._moments[at] = datetime.fromisoformat(at)
        return moment
