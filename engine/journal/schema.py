"""The SQLite journal's schema as data: tables, statements, and numbered migrations.

`MIGRATIONS[n]` takes a journal from schema version n to n + 1, and runs in one
transaction together with the `schema_version` update (a journal that had a version
before is first copied beside itself, `backup_name`). A journal whose version is above
`SCHEMA_VERSION` was written by a newer engine and is refused; one at `READABLE_FROM` or
above is read by this code's readers as it is.

Versions: 1 the tables; 2 an index on `records(at)`, so the first record after a time
(`engine replay --until TIME`) is a look-up instead of a scan from position 1.
"""

from __future__ import annotations

SCHEMA_VERSION = 2
READABLE_FROM = 1
"""The oldest schema version the read-only opens (replay, check, export) read unmigrated:
version 2 adds only an index, so a version 1 journal reads the same, its time look-up
scanning."""
APPLICATION_ID = 0x454A4E4C
"""`PRAGMA application_id` of a journal file ("EJNL"), set by the first migration."""

COLUMNS = (
    "position, stream, stream_version, type, schema, at, data, "
    "idempotency_key, trace_id, span_id, term, checksum"
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"PRAGMA application_id = {APPLICATION_ID}",
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        "INSERT INTO schema_version (version) VALUES (0)",
        """CREATE TABLE records (
            position INTEGER PRIMARY KEY,
            stream TEXT NOT NULL,
            stream_version INTEGER NOT NULL,
            type TEXT NOT NULL,
            schema INTEGER NOT NULL,
            at TEXT NOT NULL,
            data TEXT NOT NULL,
            idempotency_key TEXT UNIQUE,
            trace_id TEXT,
            span_id TEXT,
            term INTEGER NOT NULL,
            checksum TEXT NOT NULL,
            UNIQUE (stream, stream_version)
        )""",
        """CREATE TABLE chain_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            position INTEGER NOT NULL,
            checksum TEXT NOT NULL
        )""",
        "INSERT INTO chain_head (id, position, checksum) VALUES (1, 0, '" + "0" * 64 + "')",
        # the head moves in the same statement as each insert, so no commit can skip it
        """CREATE TRIGGER records_move_chain_head AFTER INSERT ON records BEGIN
            UPDATE chain_head SET position = NEW.position, checksum = NEW.checksum
            WHERE id = 1;
        END""",
        """CREATE TABLE snapshots (
            stream TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            state TEXT NOT NULL,
            checksum TEXT NOT NULL
        )""",
    ),
    ("CREATE INDEX records_at ON records (at)",),
)

SELECT_FIRST_AFTER = "SELECT MIN(+position) FROM records WHERE at > ?"
"""The first position whose time is after `?`. The `+` keeps SQLite from reading the
rows in position order until one matches (a scan of nearly the whole journal for a time
near its end): it reads `records_at` from that time on instead."""


def backup_name(journal_name: str, version: int) -> str:
    """The name of the copy of a journal at schema `version` taken before its migration,
    in the journal's directory (`journal.db.schema-1.backup`)."""
    return f"{journal_name}.schema-{version}.backup"


INSERT_RECORD = f"INSERT INTO records ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
SELECT_FROM = f"SELECT {COLUMNS} FROM records WHERE position >= ? ORDER BY position LIMIT ?"
_WITH_PREVIOUS = (
    "SELECT r.position, r.stream, r.stream_version, r.type, r.schema, r.at, r.data, "
    "r.idempotency_key, r.trace_id, r.span_id, r.term, r.checksum, p.checksum "
    "FROM records r LEFT JOIN records p ON p.position = r.position - 1 "
)
SELECT_STREAM = (
    _WITH_PREVIOUS + "WHERE r.stream = ? AND r.stream_version >= ? ORDER BY r.stream_version"
)
SELECT_KEY = _WITH_PREVIOUS + "WHERE r.idempotency_key = ?"
SELECT_HEAD = (
    "SELECT h.position, h.checksum, "
    "(SELECT position FROM records ORDER BY position DESC LIMIT 1), "
    "(SELECT checksum FROM records ORDER BY position DESC LIMIT 1), "
    "(SELECT term FROM records ORDER BY position DESC LIMIT 1) "
    "FROM chain_head h WHERE h.id = 1"
)
UPSERT_SNAPSHOT = (
    "INSERT INTO snapshots (stream, version, state, checksum) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (stream) DO UPDATE SET version = excluded.version, state = excluded.state, "
    "checksum = excluded.checksum WHERE excluded.version >= snapshots.version"
)
