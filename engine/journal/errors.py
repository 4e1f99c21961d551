"""Errors the journal raises; each message names the thing and what to do."""

from __future__ import annotations


class JournalError(Exception):
    """Base class of every journal error."""


class ConcurrencyError(JournalError):
    """An append stated an expected stream version, and the stream had moved on."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(
            f"stream {stream!r} is at version {actual}, not the expected {expected}: "
            "re-read the stream and decide again"
        )
        self.stream = stream
        self.expected = expected
        self.actual = actual


class CorruptJournal(JournalError):
    """A record failed its checksum, a row is missing, or the file is damaged."""

    def __init__(self, path: str, message: str, position: int | None = None) -> None:
        where = f" at position {position}" if position is not None else ""
        super().__init__(
            f"journal {path} is corrupt{where}: {message}; "
            "keep the file for a post-mortem and start from a fresh journal"
        )
        self.path = path
        self.position = position


class NotAJournal(JournalError):
    """The file exists but is not a journal (not SQLite, or SQLite of another program)."""


class SchemaTooNew(JournalError):
    """The journal was written by a newer engine; this one refuses to touch it."""


class JournalLocked(JournalError):
    """Another process holds the journal open for writing."""


class JournalUnavailable(JournalError):
    """The path cannot be used: a directory, unreadable, read-only, missing parent, ..."""


class JournalClosed(JournalError):
    """The journal was closed; open it again to use it."""


class StaleTerm(JournalError):
    """`set_term` was given a lower term than the one already stamped (a deposed leader)."""

    def __init__(self, current: int, offered: int) -> None:
        super().__init__(
            f"term {offered} is lower than the journal's current term {current}: "
            "a newer leader has written; stop writing and re-acquire leadership"
        )
        self.current = current
        self.offered = offered


class FencedOut(JournalError):
    """An append carried a (shard, term) fence and a higher term is recorded for that shard."""

    def __init__(self, shard: str, offered: int, recorded: int) -> None:
        super().__init__(
            f"shard {shard!r} has term {recorded} recorded, higher than this append's term "
            f"{offered}: a newer owner writes this shard; stop writing and re-acquire it"
        )
        self.shard = shard
        self.offered = offered
        self.recorded = recorded
