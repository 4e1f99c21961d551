"""What a stream's records say about one effect key: attempts so far, how many of them
ended waiting for another resource, and the last failure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.fsm import events as ev
from engine.journal.record import Record


@dataclass(frozen=True, slots=True)
class KeyHistory:
    """The attempts (`EffectStarted` records) of one key, the `waits` among them (failures
    marked `waiting`), and its last recorded failure."""

    attempts: int = 0
    last_failure: ev.EffectOutcome | None = None
    waits: int = 0

    def counted(self, attempt: int) -> int:
        """The number of attempt `attempt` (the next, or the last) among the attempts that
        count toward giving up and the backoff: the waits before it are left out."""
        return max(1, attempt - self.waits)

    @property
    def failed_for_good(self) -> bool:
        """The last failure was permanent or the last allowed attempt."""
        failure = self.last_failure
        return failure is not None and (failure.gave_up or not failure.retryable)


def key_history(records: Iterable[Record], key: str) -> KeyHistory:
    """The history of `key` in `records` (one stream, in order)."""
    attempts = waits = 0
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
            waits += fact.waiting * (1 + fact.skipped)
    return KeyHistory(attempts=attempts, last_failure=last_failure, waits=waits)
