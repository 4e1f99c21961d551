"""The durable journal: an ordered, checksummed, append-only log of events per resource."""

from engine.journal.batch import Fence
from engine.journal.errors import (
    ConcurrencyError,
    CorruptJournal,
    FencedOut,
    JournalClosed,
    JournalError,
    JournalLocked,
    JournalUnavailable,
    NotAJournal,
    SchemaTooNew,
    StaleTerm,
)
from engine.journal.record import NewEvent, Record, Snapshot, stream_name
from engine.journal.store import ANY_VERSION, Journal

__all__ = [
    "ANY_VERSION",
    "ConcurrencyError",
    "CorruptJournal",
    "Fence",
    "FencedOut",
    "Journal",
    "JournalClosed",
    "JournalError",
    "JournalLocked",
    "JournalUnavailable",
    "NewEvent",
    "NotAJournal",
    "Record",
    "SchemaTooNew",
    "Snapshot",
    "StaleTerm",
    "stream_name",
]
