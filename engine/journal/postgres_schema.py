"""The PostgreSQL journal's schema as data: tables, statements, and numbered migrations.

The journal lives in the connection's current schema (the first of its `search_path`),
so one database can hold several journals. `MIGRATIONS[n]` takes it from schema
version n to n + 1 in one transaction with the `engine_journal` version update; a
version above `SCHEMA_VERSION` was written by a newer engine and is refused, one at
`READABLE_FROM` or above is read by read-only opens as it is.

Versions, as SQLite's (`engine/journal/schema.py`): 1 the tables; 2 an index on
`records(at)` for reads of a time window.
"""

from __future__ import annotations

SCHEMA_VERSION = 2
READABLE_FROM = 1
"""The oldest schema version a read-only open reads unmigrated (2 adds only an index)."""
APPLICATION = "engine-journal"
"""The `engine_journal.application` marker that tells a journal from other tables."""
META_TABLE = "engine_journal"
CHANNEL = "engine_journal"
"""The LISTEN/NOTIFY channel; the payload is the schema whose journal committed."""

COLUMNS = (
    "position, stream, stream_version, type, schema, at, data, "
    "idempotency_key, trace_id, span_id, term, checksum"
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE engine_journal (application TEXT NOT NULL, version INTEGER NOT NULL)",
        f"INSERT INTO engine_journal (application, version) VALUES ('{APPLICATION}', 0)",
        """CREATE TABLE records (
            position BIGINT PRIMARY KEY,
            stream TEXT NOT NULL,
            stream_version BIGINT NOT NULL,
            type TEXT NOT NULL,
            schema INTEGER NOT NULL,
            at TEXT NOT NULL,
            data TEXT NOT NULL,
            idempotency_key TEXT UNIQUE,
            trace_id TEXT,
            span_id TEXT,
            term BIGINT NOT NULL,
            checksum TEXT NOT NULL,
            UNIQUE (stream, stream_version)
        )""",
        # one row, locked by every append transaction: it serialises position assignment
        # across processes, and a rolled-back transaction leaves it (and so no gap) behind
        """CREATE TABLE chain_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            position BIGINT NOT NULL,
            checksum TEXT NOT NULL
        )""",
        "INSERT INTO chain_head (id, position, checksum) VALUES (1, 0, '" + "0" * 64 + "')",
        """CREATE TABLE snapshots (
            stream TEXT PRIMARY KEY,
            version BIGINT NOT NULL,
            state TEXT NOT NULL,
            checksum TEXT NOT NULL
        )""",
        """CREATE TABLE shard_terms (
            shard TEXT PRIMARY KEY,
            term BIGINT NOT NULL
        )""",
    ),
    # inside the migration's transaction (not CONCURRENTLY): appends wait while it builds
    ("CREATE INDEX records_at ON records (at)",),
)

INSERT_RECORD = (
    f"INSERT INTO records ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
LOCK_HEAD = "SELECT position, checksum FROM chain_head WHERE id = 1 FOR UPDATE"
MOVE_HEAD = "UPDATE chain_head SET position = %s, checksum = %s WHERE id = 1"
NOTIFY = f"SELECT pg_notify('{CHANNEL}', current_schema())"
# The batch look-ups probe the indexes once per element (a scalar subquery over
# `unnest`), never `= ANY(array)`: the writer's statements are prepared, and a generic
# plan made while the table was small scans the whole table for `= ANY`, so every commit
# cost grew with the journal until the next ANALYZE. An element with no row reads NULL
# (the caller drops it).
SELECT_KEYS = (
    "SELECT k.key, (SELECT r.position FROM records r WHERE r.idempotency_key = k.key) "
    "FROM unnest(%s::text[]) AS k(key)"
)
SELECT_VERSIONS = (
    "SELECT s.stream, (SELECT MAX(r.stream_version) FROM records r WHERE r.stream = s.stream) "
    "FROM unnest(%s::text[]) AS s(stream)"
)
SELECT_SHARD_TERMS = "SELECT shard, term FROM shard_terms WHERE shard = ANY(%s)"
RAISE_SHARD_TERM = (
    "INSERT INTO shard_terms (shard, term) VALUES (%s, %s) ON CONFLICT (shard) DO UPDATE "
    "SET term = GREATEST(shard_terms.term, excluded.term)"
)
SELECT_FROM = f"SELECT {COLUMNS} FROM records WHERE position >= %s ORDER BY position LIMIT %s"
_WITH_PREVIOUS = (
    "SELECT r.position, r.stream, r.stream_version, r.type, r.schema, r.at, r.data, "
    "r.idempotency_key, r.trace_id, r.span_id, r.term, r.checksum, p.checksum "
    "FROM records r LEFT JOIN records p ON p.position = r.position - 1 "
)
SELECT_STREAM = (
    _WITH_PREVIOUS + "WHERE r.stream = %s AND r.stream_version >= %s ORDER BY r.stream_version"
)
SELECT_KEY = _WITH_PREVIOUS + "WHERE r.idempotency_key = %s"
SELECT_HEAD = (
    "SELECT h.position, h.checksum, l.position, l.checksum, l.term FROM chain_head h "
    "LEFT JOIN LATERAL (SELECT position, checksum, term FROM records "
    "ORDER BY position DESC LIMIT 1) l ON true WHERE h.id = 1"
)
UPSERT_SNAPSHOT = (
    "INSERT INTO snapshots (stream, version, state, checksum) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (stream) DO UPDATE SET version = excluded.version, state = excluded.state, "
    "checksum = excluded.checksum WHERE excluded.version >= snapshots.version"
)
