"""`ctx.patched("change-id")`: a handler changes course deterministically across a
deploy. The answer is fixed per handler run (one effect key: `<uid>:<gen>:provision[:n]`)
the first time the run asks, and journaled as a `PatchMarker` record on the resource's
stream; every later evaluation, in this process, after a restart, or in replay, reads
the marker back (as Temporal's patching does).

The first answer: True when the run's first `EffectStarted` was written by the code
version running now (work that started after the change was deployed), False when it was
written by another version, or by none (work that began before it: resumed after a
restart, retried after a deploy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from engine.fsm import events as ev
from engine.journal.record import NewEvent, Record
from engine.runtime.reconcile.code_version import CODE_VERSION_FIELD

PATCH_MARKER: Final = "PatchMarker"
"""A record type the fold skips: the answer a handler run got from `ctx.patched`."""


def patch_marker(*, change: str, run: str, patched: bool) -> NewEvent:
    """The `PatchMarker` of change `change` in the handler run under key `run`."""
    return NewEvent(
        type=PATCH_MARKER, data={"change": change, "run": run, "patched": patched}, schema=1
    )


def recorded_marker(records: list[Record], *, change: str, run: str) -> Record | None:
    """The `PatchMarker` of `change` in run `run` among `records`, if any."""
    for record in records:
        if (
            record.type == PATCH_MARKER
            and record.data.get("change") == change
            and record.data.get("run") == run
        ):
            return record
    return None


def run_started_by(records: list[Record], run: str) -> str | None:
    """The code version that wrote the first `EffectStarted` of run `run` (None: none
    recorded, or written before records carried a version)."""
    for record in records:
        if record.type == ev.EFFECT_STARTED and record.data.get("key") == run:
            version = record.data.get(CODE_VERSION_FIELD)
            return str(version) if version is not None else None
    return None


class StreamAppender(Protocol):
    """The part of the stream writer patch markers need."""

    async def append(self, stream: str, events: list[NewEvent]) -> tuple[int, ...]: ...


class StreamReader(Protocol):
    async def read_stream(self, stream: str) -> list[Record]: ...


class PatchAnswers(Protocol):
    """What stands behind `Context.patched` and `Context.deprecate_patch`."""

    async def patched(self, stream: str, run: str, change: str) -> bool: ...

    async def deprecated(self, stream: str, run: str, change: str) -> None: ...


class LivePatches:
    """The live engine's answers: the recorded marker, else the rule above, journaled."""

    def __init__(self, *, reader: StreamReader, writer: StreamAppender, code_version: str) -> None:
        self._reader = reader
        self._writer = writer
        self._code_version = code_version

    async def patched(self, stream: str, run: str, change: str) -> bool:
        records = await self._reader.read_stream(stream)
        marker = recorded_marker(records, change=change, run=run)
        if marker is not None:
            return bool(marker.data.get("patched"))
        answer = run_started_by(records, run) == self._code_version
        await self._writer.append(stream, [patch_marker(change=change, run=run, patched=answer)])
        return answer

    async def deprecated(self, stream: str, run: str, change: str) -> None:
        """Nothing to record: code that deprecated a patch always takes the new path."""
        return None


def marker_facts(data: Mapping[str, Any]) -> tuple[str, bool]:
    """(change id, answer) of a `PatchMarker` payload."""
    return str(data.get("change") or ""), bool(data.get("patched"))
