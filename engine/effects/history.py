"""What a stream's records say about one effect key: attempts so far and the last failure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.fsm import events as ev
from engine.journal.record import Record


@dataclass(frozen=True, slots=True)
class KeyHistory:
    """The attempts (`EffectStarted` records) of one key and its last recorded failure."""

    attempts: int = 0
    last_failure: ev.EffectOutcome | None = None

    @property
    def failed_for_good(self) -> bool:
        """The last failure was permanent or the last allowed attempt."""
        failure = self.last_failure
        return failure is not None and (failure.gave_up or not failure.retryable)


def key_history(records: Iterable[Record], key: str) -> KeyHistory:
    """The history of `key` in `records` (one stream, in order)."""
    attempts = 0
    last_failure: ev.EffectOutcome | None = None
    for record in records:
        if record.type not in (ev.EFFECT_STARTED, ev.EFFECT_FAILED):
            continue
        if record.data.get("key") != key:
            continue
        fact = ev.parse_effect(record)
        if record.type == ev.EFFECT_STARTED:
            attempts = max(attempts + 1, fact.attempt)
        else:
            last_failure = fact
    return KeyHistory(attempts=attempts, last_failure=last_failure)
