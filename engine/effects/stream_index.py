"""What a stream's committed records say about its effect keys, kept in memory and advanced
by reading only the records appended since (the journal stays the truth: a fresh index,
after a restart or for a new runner, starts from the stream's first record).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.effects.history import KeyHistory
from engine.fsm import events as ev
from engine.journal.record import Record
from engine.journal.store import Journal


@dataclass(frozen=True, slots=True)
class RecordedSuccess:
    """A key's committed `EffectSucceeded`: its result as the journal holds it."""

    result: Any


@dataclass
class _KeyFacts:
    attempts: int = 0
    last_failure: ev.EffectOutcome | None = None
    success: RecordedSuccess | None = None
    waits: int = 0


@dataclass
class _StreamFacts:
    version: int = 0
    keys: dict[str, _KeyFacts] = field(default_factory=dict)


class StreamEffectIndex:
    """stream → key → attempts, last failure and recorded success.

    `await index.refresh(stream)` brings a stream up to its committed head (no read when
    the journal's head version of the stream is the one already indexed); then
    `history(stream, key)` and `success(stream, key)` answer as `key_history` over the
    whole stream and a lookup of the key's `EffectSucceeded` in it would.
    Assumption: one event loop; records are only ever appended (versions without gaps).
    """

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._streams: dict[str, _StreamFacts] = {}

    async def refresh(self, stream: str) -> None:
        facts = self._streams.setdefault(stream, _StreamFacts())
        if facts.version and await self._journal.stream_version(stream) == facts.version:
            return
        for record in await self._journal.read_stream(stream, facts.version + 1):
            if record.stream_version <= facts.version:
                continue
            _learn(facts, record)
            facts.version = record.stream_version

    def history(self, stream: str, key: str) -> KeyHistory:
        facts = self._key(stream, key)
        if facts is None:
            return KeyHistory()
        return KeyHistory(
            attempts=facts.attempts, last_failure=facts.last_failure, waits=facts.waits
        )

    def success(self, stream: str, key: str) -> RecordedSuccess | None:
        facts = self._key(stream, key)
        return facts.success if facts is not None else None

    def forget(self, stream: str) -> None:
        """Drop what is known of `stream` (a closed stream; a later refresh re-reads it)."""
        self._streams.pop(stream, None)

    def _key(self, stream: str, key: str) -> _KeyFacts | None:
        facts = self._streams.get(stream)
        return facts.keys.get(key) if facts is not None else None


def _learn(facts: _StreamFacts, record: Record) -> None:
    if record.type not in (ev.EFFECT_STARTED, ev.EFFECT_FAILED, ev.EFFECT_SUCCEEDED):
        return
    key = record.data.get("key")
    if not isinstance(key, str):
        return
    fact = ev.parse_effect(record)
    known = facts.keys.setdefault(key, _KeyFacts())
    if record.type == ev.EFFECT_STARTED:
        known.attempts = max(known.attempts + 1, fact.attempt)
    elif record.type == ev.EFFECT_FAILED:
        known.last_failure = fact
        known.waits += fact.waiting * (1 + fact.skipped)  # a collapsed run's dropped waits
    elif known.success is None and record.idempotency_key == key:
        known.success = RecordedSuccess(fact.result)
