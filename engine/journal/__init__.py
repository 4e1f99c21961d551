"""The durable journal: an ordered, checksummed, append-only log of events per resource.

Names are imported on first use, so a tool that needs one module (the offline reader)
does not load the writers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "ANY_VERSION": "engine.journal.store",
    "ConcurrencyError": "engine.journal.errors",
    "CorruptJournal": "engine.journal.errors",
    "Fence": "engine.journal.batch",
    "FencedOut": "engine.journal.errors",
    "Journal": "engine.journal.store",
    "JournalClosed": "engine.journal.errors",
    "JournalError": "engine.journal.errors",
    "JournalLocked": "engine.journal.errors",
    "JournalUnavailable": "engine.journal.errors",
    "NewEvent": "engine.journal.record",
    "NotAJournal": "engine.journal.errors",
    "Record": "engine.journal.record",
    "SchemaTooNew": "engine.journal.errors",
    "Snapshot": "engine.journal.record",
    "StaleTerm": "engine.journal.errors",
    "stream_name": "engine.journal.record",
}
"""Exported name → the module that holds it."""

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
