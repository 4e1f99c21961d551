"""StreamEffectIndex answers as a full read of the stream would, across appends and restarts."""

from __future__ import annotations

from engine.effects.history import key_history
from engine.effects.stream_index import StreamEffectIndex
from engine.fsm import events as ev
from engine.journal.memory import MemoryJournal
from engine.journal.record import NewEvent

STREAM = "g/Kind/ns/name#u1"
KEY = "u1:1:create"
OTHER = "u1:1:delete"


def _failed(key: str, attempt: int, *, retryable: bool) -> NewEvent:
    return ev.effect_failed(
        key=key,
        name="create",
        attempt=attempt,
        error_class="Boom",
        retryable=retryable,
        message="boom",
        gave_up=False,
        seconds=0.1,
    )


async def _agrees_with_full_read(journal: MemoryJournal, index: StreamEffectIndex) -> None:
    await index.refresh(STREAM)
    records = await journal.read_stream(STREAM)
    for key in (KEY, OTHER):
        assert index.history(STREAM, key) == key_history(records, key)
        done = await journal.find_by_key(key)
        expected = done.data.get("result") if done is not None else None
        recorded = index.success(STREAM, key)
        assert (recorded.result if recorded is not None else None) == expected
        assert (recorded is not None) == (done is not None)


async def test_index_follows_each_append_like_a_full_read() -> None:
    journal = MemoryJournal()
    index = StreamEffectIndex(journal)
    await _agrees_with_full_read(journal, index)
    steps = [
        ev.effect_started(key=KEY, name="create", attempt=1),
        _failed(KEY, 1, retryable=True),
        ev.effect_started(key=OTHER, name="delete", attempt=1),
        ev.effect_started(key=KEY, name="create", attempt=2),
        ev.effect_succeeded(key=KEY, name="create", attempt=2, result={"id": 7}, seconds=0.1),
        _failed(OTHER, 1, retryable=False),
    ]
    for step in steps:
        await journal.append(STREAM, [step])
        await _agrees_with_full_read(journal, index)
    assert index.success(STREAM, KEY) is not None
    assert index.history(STREAM, OTHER).failed_for_good


async def test_a_fresh_index_rebuilds_from_the_journal_and_forget_drops_the_stream() -> None:
    journal = MemoryJournal()
    await journal.append(STREAM, [ev.effect_started(key=KEY, name="create", attempt=1)])
    await journal.append(STREAM, [_failed(KEY, 1, retryable=True)])
    restarted = StreamEffectIndex(journal)
    await restarted.refresh(STREAM)
    assert restarted.history(STREAM, KEY).attempts == 1
    assert restarted.history(STREAM, KEY).last_failure is not None
    restarted.forget(STREAM)
    assert restarted.history(STREAM, KEY).attempts == 0
    await restarted.refresh(STREAM)
    assert restarted.history(STREAM, KEY).attempts == 1
