"""The durable journal: an ordered, checksummed, append-only log of events per resource."""

from engine.journal.errors import (
    ConcurrencyError,
    CorruptJournal,
    JournalError,
    JournalLocked,
    JournalUnavailable,
    NotAJournal,
    SchemaTooNew,
)
from engine.journal.record import NewEvent, Record, Snapshot, stream_name
from engine.journal.store import ANY_VERSION, Journal

__all__ = [
    "ANY_VERSION",
    "ConcurrencyError",
    "CorruptJournal",
    "Journal",
    "JournalError",
    "JournalLocked",
    "JournalUnavailable",
    "NewEvent",
    "NotAJournal",
    "Record",
    "SchemaTooNew",
    "Snapshot",
    "stream_name",
]
