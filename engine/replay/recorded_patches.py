"""`ctx.patched` in replay: the answer a handler run got is read from the recording's
`PatchMarker` when the marker is the stream's next record (the live run asked here) or
was reproduced already (asked earlier in the run), and the marker is appended again
through the gate. When the recording holds no marker at this point, the code that made
this part of the journal never asked: it took the old path, so the answer is False and
nothing is appended (Temporal's rule; a marker the code then skips is a divergence).
"""

from __future__ import annotations

from engine.journal.record import NewEvent, Record
from engine.replay.recording import Recording
from engine.runtime.reconcile.patches import StreamAppender


class RecordedPatches:
    """The replayed loop's `PatchAnswers`, over the recording."""

    def __init__(self, recording: Recording, writer: StreamAppender) -> None:
        self._recording = recording
        self._writer = writer

    async def patched(self, stream: str, run: str, change: str) -> bool:
        marker = await self._here(stream, run, change)
        return marker is not None and bool(marker.data.get("patched"))

    async def deprecated(self, stream: str, run: str, change: str) -> None:
        await self._here(stream, run, change)

    async def _here(self, stream: str, run: str, change: str) -> Record | None:
        """The run's marker when the live run had asked by this point (reproduced now
        when it is the stream's next record), else None."""
        recording = self._recording
        marker = recording.patch_marker(stream, run, change)
        if marker is None:
            return None
        if recording.consumed(marker):
            return marker  # asked again in the same run: live, the stream's marker answered
        if recording.next_of(stream) is not marker:
            return None  # this attempt's code never asked here
        event = NewEvent(type=marker.type, data=marker.data, schema=marker.schema)
        await self._writer.append(marker.stream, [event])
        return marker
