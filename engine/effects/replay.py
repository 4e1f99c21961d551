"""Replay source: answers effects from a recorded stream, in order, and spots divergence.

Matching rule: the next `EffectStarted` after the cursor must be the key the code asks
for; its outcome is the first `EffectSucceeded`/`EffectFailed` of that key after it
(attempts cut off by a crash, and effects nested inside, lie in between and are part of
it). A key whose success was already replayed answers again without moving the cursor,
as a live run would not call it either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.effects.errors import ReplayDivergence
from engine.fsm import events as ev
from engine.journal.record import Record


@dataclass(frozen=True, slots=True)
class RecordedOutcome:
    """A recorded attempt: its outcome and, after a retryable failure, the retry."""

    started: Record
    outcome: ev.EffectOutcome
    retry: ev.EffectOutcome | None
    records: tuple[Record, ...]
    """The effect records from its start to its outcome and retry, nested effects' and
    crash-cut attempts' included (other records in between, like `Observed`, are not)."""
    waits_before: int = 0
    """How many earlier attempts of the key ended waiting (`EffectFailed` marked
    `waiting`): the backoff counts attempts without them."""


@dataclass(slots=True)
class ReplayCursor:
    """The position of a replay within one stream's records (mutable, one per stream)."""

    stream: str
    records: list[Record]
    index: int = 0
    succeeded: dict[str, ev.EffectOutcome] = field(default_factory=dict)
    waits: dict[str, int] = field(default_factory=dict)

    def take(self, key: str, name: str) -> RecordedOutcome | ev.EffectOutcome:
        """The recorded answer to running `key` now. Errors: `ReplayDivergence`."""
        done = self.succeeded.get(key)
        if done is not None:
            return done
        start = self._next_started()
        if start is None:
            raise ReplayDivergence(
                stream=self.stream, position=None, expected=None, got=key, why="no more effects"
            )
        started = self.records[start]
        recorded_key = started.data.get("key")
        if recorded_key != key or started.data.get("name") != name:
            raise ReplayDivergence(
                stream=self.stream,
                position=started.position,
                expected=str(recorded_key),
                got=key,
                why=f"the journal started {started.data.get('name')!r}, the code runs {name!r}",
            )
        end = self._outcome_after(start, key)
        if end is None:
            raise ReplayDivergence(
                stream=self.stream,
                position=started.position,
                expected=key,
                got=key,
                why="the effect was still in flight when the journal ends",
            )
        outcome = ev.parse_effect(self.records[end])
        self.index = end + 1
        own = [r for r in self.records[start : end + 1] if r.type in ev.EFFECT_TYPES]
        retry = None
        if self.index < len(self.records):
            following = self.records[self.index]
            if following.type == ev.RETRY_SCHEDULED and following.data.get("key") == key:
                retry = ev.parse_effect(following)
                own.append(following)
                self.index += 1
        if outcome.type == ev.EFFECT_SUCCEEDED:
            self.succeeded[key] = outcome
        waits_before = self.waits.get(key, 0)
        if outcome.waiting:  # the identical waits a collapsed run did not journal came first
            waits_before += outcome.skipped
            self.waits[key] = waits_before + 1
        return RecordedOutcome(
            started=started,
            outcome=outcome,
            retry=retry,
            records=tuple(own),
            waits_before=waits_before,
        )

    def _next_started(self) -> int | None:
        for index in range(self.index, len(self.records)):
            if self.records[index].type == ev.EFFECT_STARTED:
                return index
        return None

    def _outcome_after(self, start: int, key: str) -> int | None:
        for index in range(start + 1, len(self.records)):
            record = self.records[index]
            if record.type in (ev.EFFECT_SUCCEEDED, ev.EFFECT_FAILED) and (
                record.data.get("key") == key
            ):
                return index
        return None
