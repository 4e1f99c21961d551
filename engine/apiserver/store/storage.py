"""SQLite storage: the objects table, the append-only change log and the live change fan-out.

One global revision numbers every write; an object's resourceVersion is that revision as a
decimal string. All objects are also held in memory (the table is the durable copy), so
reads never touch SQLite. The change log keeps a retention window; older revisions are
compacted away and a watch or continue token from before them is Expired (410).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from engine.apiserver.store.errors import dumps

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, rv INTEGER NOT NULL,
    uid TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS changes (rv INTEGER PRIMARY KEY, type TEXT NOT NULL,
    key TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL, compacted INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (id, revision, compacted) VALUES (1, 0, 0);
"""

log = logging.getLogger(__name__)
_UPSERT_OBJECT = (
    "INSERT INTO objects (key, rv, uid, body) VALUES (?,?,?,?) ON CONFLICT (key) "
    "DO UPDATE SET rv = excluded.rv, uid = excluded.uid, body = excluded.body"
)
"""An object written over its row in place: INSERT OR REPLACE deletes the row and inserts
a new one (a new rowid, the key's index entry rewritten), one more page to the WAL for
every update."""


CLOSED = "CLOSED"
_SORTED_KEPT = 16
"""Prefixes whose sorted items `Store.items` keeps (one per kind and namespace listed)."""


def _dumps(body: Any) -> str:
    return dumps(body).decode()


@dataclass(frozen=True)
class Change:
    """One committed write: ADDED, MODIFIED or DELETED (body = last state, with the new rv)."""

    rv: int
    type: str
    key: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Write:
    """A write to commit; `expect_rv` 0 means the key must not exist.

    With `delete`, the object is removed and `body` (or, if None, the stored object) is
    the last state carried by the DELETED change.
    """

    key: str
    body: dict[str, Any] | None
    expect_rv: int
    delete: bool = False


@dataclass(frozen=True)
class _Pending:
    """A commit waiting for the next transaction, and the future its caller awaits."""

    writes: Sequence[Write]
    done: asyncio.Future[list[Change]]


def _fail(done: asyncio.Future[list[Change]], error: BaseException) -> None:
    if done.done():
        return
    if isinstance(error, asyncio.CancelledError):
        done.cancel()
    else:
        done.set_exception(error)


CHECKPOINT_EVERY = 1_000
"""Changes between two WAL checkpoints (SQLite's own automatic checkpoint is off)."""


def _raw_connection(conn: aiosqlite.Connection) -> sqlite3.Connection:
    """The sqlite3 connection under `conn` (opened with check_same_thread=False)."""
    raw: sqlite3.Connection = conn._conn
    return raw


class StaleWrite(Exception):
    """The object changed (or appeared, or vanished) since the writer read it."""


class ForeignDatabase(Exception):
    """The SQLite file belongs to something else (it has tables, but not the server's)."""


class StoreClosed(Exception):
    """The store was closed (the server is stopping): the write was not made."""


class Compacted(Exception):
    """The requested revision is older than the retained change log."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"too old resource version: {requested} ({compacted})")
        self.requested = requested
        self.compacted = compacted


class Store:
    """The durable object store. Create with `await Store.open(...)`, end with `close()`.

    Guarantees: commits are serialised and atomic; `commit` checks every write's
    `expect_rv` against the current revision of its key and raises StaleWrite on a
    mismatch, writing nothing; each write gets its own revision, in order; after the
    transaction commits, every subscriber queue receives the changes in revision order.
    """

    def __init__(self, conn: aiosqlite.Connection, *, retention: int) -> None:
        self._conn = conn
        self._retention = retention
        self._objects: dict[str, dict[str, Any]] = {}
        self._sorted: dict[str, tuple[int, list[tuple[str, dict[str, Any]]]]] = {}
        """`items(prefix)` as of a revision: the pages of one paged LIST share one walk."""
        self._lock = asyncio.Lock()
        self._subscribers: set[asyncio.Queue[Change]] = set()
        self._listeners: list[Callable[[Sequence[Change]], None]] = []
        self._pending: list[_Pending] = []
        self._committer: asyncio.Task[None] | None = None
        self.revision = 0
        self.compacted = 0
        self._since_compaction = 0
        self._since_checkpoint = 0
        self._closed = False

    @classmethod
    async def open(cls, path: str, *, retention: int = 10_000) -> Store:
        """Open (creating if needed) the database at `path` (":memory:" for a scratch one)."""
        # Commits write on the event loop's thread (see _persist), the rest on aiosqlite's.
        conn = await aiosqlite.connect(path, check_same_thread=False)
        try:
            store = await cls._load(conn, retention=retention)
        except BaseException:
            await conn.close()
            raise
        return store

    @classmethod
    async def _load(cls, conn: aiosqlite.Connection, *, retention: int) -> Store:
        async with conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cur:
            tables = {str(row[0]) for row in await cur.fetchall()}
        if tables and not {"objects", "changes", "meta"} <= tables:
            raise ForeignDatabase(f"it holds other tables ({', '.join(sorted(tables))})")
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run off the loop
        await conn.executescript(SCHEMA)
        await conn.commit()
        store = cls(conn, retention=max(1, retention))
        async with conn.execute("SELECT revision, compacted FROM meta WHERE id = 1") as cur:
            row = await cur.fetchone()
        assert row is not None
        store.revision, store.compacted = int(row[0]), int(row[1])
        async with conn.execute("SELECT key, body FROM objects") as cur:
            async for key, body in cur:
                store._objects[key] = json.loads(body)
        return store

    async def close(self) -> None:
        """Finish the pending commits, close the database and tell every subscriber (a
        change of type CLOSED).

        A commit that arrives once closing began fails with StoreClosed: a commit writes on
        the event loop's thread, and one made while aiosqlite's thread closes the
        connection would use it as it is freed (a crash of the whole process)."""
        if self._closed:
            return
        self._closed = True
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)
        for queue in tuple(self._subscribers):
            queue.put_nowait(Change(-1, CLOSED, "", {}))
        async with self._lock:  # no read or checkpoint of this connection still runs
            await self._conn.close()

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored object at `key` (shared: callers must not mutate it)."""
        return self._objects.get(key)

    def items(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        """Every (key, object) whose key starts with `prefix`, in key order (walked and
        sorted once per revision and prefix: each page of a paged LIST asks again)."""
        known = self._sorted.get(prefix)
        if known is not None and known[0] == self.revision:
            return list(known[1])
        found = [(k, v) for k, v in self._objects.items() if k.startswith(prefix)]
        found.sort(key=lambda kv: kv[0])
        if known is None and len(self._sorted) >= _SORTED_KEPT:
            del self._sorted[next(iter(self._sorted))]  # the oldest prefix first
        self._sorted[prefix] = (self.revision, found)
        return list(found)

    def all_objects(self) -> Iterable[tuple[str, dict[str, Any]]]:
        """Every stored (key, object), unordered."""
        return self._objects.items()

    def add_listener(self, listener: Callable[[Sequence[Change]], None]) -> None:
        """Call `listener(changes)` synchronously after each commit, before fan-out."""
        self._listeners.append(listener)

    def subscribe(self) -> asyncio.Queue[Change]:
        """A queue that receives every change committed from now on."""
        queue: asyncio.Queue[Change] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change]) -> None:
        """Stop delivering changes to `queue`."""
        self._subscribers.discard(queue)

    async def commit(self, writes: Sequence[Write]) -> list[Change]:
        """Commit `writes` in one transaction and return their changes (empty if none).

        Commits that arrive while one is being written wait and then go into the next
        transaction together (group commit): each is checked on its own, in arrival order,
        against the state the ones before it leave, and a stale one fails alone; none
        returns before the transaction holding it has committed.
        """
        if self._closed:
            raise StoreClosed("the store is closed: the API server is stopping")
        if not writes:
            return []
        done: asyncio.Future[list[Change]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(writes, done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending())
        return await done

    async def _commit_pending(self) -> None:
        """Write every pending commit, a batch per transaction, until none is left."""
        while self._pending:
            batch, self._pending = self._pending, []
            async with self._lock:
                try:
                    staged = self._stage_batch(batch)
                except Exception as error:  # every caller hears of it; none waits forever
                    for pending in batch:
                        _fail(pending.done, error)
                    continue
                accepted = [changes for changes in staged if isinstance(changes, list)]
                flat = [change for changes in accepted for change in changes]
                if flat:
                    try:
                        await self._persist(flat)
                    except BaseException as error:
                        for pending in batch:
                            _fail(pending.done, error)
                        if isinstance(error, asyncio.CancelledError):
                            raise
                        continue
                    self._apply(flat)
                    self._since_compaction += len(flat)
                    self._since_checkpoint += len(flat)
                    if self._since_compaction >= max(1, self._retention // 10):
                        await self._compact_locked()
            for pending, outcome in zip(batch, staged, strict=True):
                if isinstance(outcome, StaleWrite):
                    _fail(pending.done, outcome)
                    continue
                for listener in self._listeners:
                    try:
                        listener(outcome)
                    except Exception:  # a listener's bug must not leave a write unanswered
                        log.exception("a change listener failed on revision %s", outcome[-1].rv)
                for queue in tuple(self._subscribers):
                    for change in outcome:
                        queue.put_nowait(change)
                if not pending.done.done():
                    pending.done.set_result(outcome)
            if self._since_checkpoint >= CHECKPOINT_EVERY:
                await self._checkpoint()

    def _stage_batch(self, batch: Sequence[_Pending]) -> list[list[Change] | StaleWrite]:
        """Each pending commit's changes, or its StaleWrite, in order; revisions follow on."""
        view: dict[str, dict[str, Any] | None] = {}
        outcomes: list[list[Change] | StaleWrite] = []
        rv = self.revision
        for pending in batch:
            mine: dict[str, dict[str, Any] | None] = {}
            stale: StaleWrite | None = None
            for write in pending.writes:
                current = self._current(write.key, mine, view)
                current_rv = int(current["metadata"]["resourceVersion"]) if current else 0
                if write.expect_rv != current_rv:
                    stale = StaleWrite(write.key)
                    break
                mine[write.key] = None if write.delete else write.body
            if stale is not None:
                outcomes.append(stale)
                continue
            changes = self._stage(pending.writes, rv, view)
            rv = changes[-1].rv
            outcomes.append(changes)
        return outcomes

    def _current(
        self, key: str, *overlays: dict[str, dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        for overlay in overlays:
            if key in overlay:
                return overlay[key]
        return self.get(key)

    def _stage(
        self, writes: Sequence[Write], rv: int, view: dict[str, dict[str, Any] | None]
    ) -> list[Change]:
        """The changes of `writes` from revision `rv` on; `view` (the batch's staged state
        so far) takes them in."""
        changes: list[Change] = []
        for write in writes:
            rv += 1
            if write.delete:
                last = write.body or self._current(write.key, view)
                assert last is not None
                body = {**last, "metadata": {**last["metadata"], "resourceVersion": str(rv)}}
                changes.append(Change(rv, "DELETED", write.key, body))
                view[write.key] = None
                continue
            assert write.body is not None
            body = {
                **write.body,
                "metadata": {**write.body["metadata"], "resourceVersion": str(rv)},
            }
            kind = "MODIFIED" if self._current(write.key, view) is not None else "ADDED"
            view[write.key] = body
            changes.append(Change(rv, kind, write.key, body))
        return changes

    def _apply(self, changes: Sequence[Change]) -> None:
        """Committed `changes` into the in-memory objects and the revision."""
        self.revision = changes[-1].rv
        for change in changes:
            if change.type == "DELETED":
                self._objects.pop(change.key, None)
            else:
                self._objects[change.key] = change.body

    async def _persist(self, changes: Sequence[Change]) -> None:
        """`changes` (in revision order) in one transaction, written on the event loop's
        own thread.

        A commit appends a few rows to the WAL (synchronous=NORMAL: no fsync), which costs
        less than the hand-off to aiosqlite's thread and back (a queue, a wake-up, the
        GIL changing hands twice, the loop's self-pipe). The lock is held: nothing else
        uses the connection meanwhile. The fsyncs are the checkpoints', and those run on
        aiosqlite's thread (`_checkpoint`)."""
        rows = [(c.rv, c.type, c.key, _dumps(c.body)) for c in changes]
        last: dict[str, tuple[Change, str]] = {}
        for change, row in zip(changes, rows, strict=True):
            last[change.key] = (change, row[3])
        deleted = [(key,) for key, (change, _) in last.items() if change.type == "DELETED"]
        stored = [
            (key, change.rv, change.body["metadata"].get("uid", ""), body)
            for key, (change, body) in last.items()
            if change.type != "DELETED"
        ]
        revision = changes[-1].rv

        def write(raw: sqlite3.Connection) -> None:
            try:
                raw.executemany("INSERT INTO changes (rv, type, key, body) VALUES (?,?,?,?)", rows)
                if deleted:
                    raw.executemany("DELETE FROM objects WHERE key = ?", deleted)
                raw.executemany(_UPSERT_OBJECT, stored)
                raw.execute("UPDATE meta SET revision = ? WHERE id = 1", (revision,))
                raw.commit()
            except BaseException:
                raw.rollback()
                raise

        write(_raw_connection(self._conn))

    async def changes_since(self, rv: int) -> list[Change]:
        """Every retained change with revision > `rv`; Compacted if `rv` predates the log."""
        async with self._lock:  # never read a half-written transaction of this connection
            if rv < self.compacted:
                raise Compacted(rv, self.compacted)
            async with self._conn.execute(
                "SELECT rv, type, key, body FROM changes WHERE rv > ? ORDER BY rv", (rv,)
            ) as cur:
                rows = await cur.fetchall()
        return [Change(int(r[0]), str(r[1]), str(r[2]), json.loads(r[3])) for r in rows]

    async def state_at(self, key: str, rv: int) -> tuple[bool, dict[str, Any] | None]:
        """(known, object) of `key` as of revision `rv`; object None when it did not exist.

        `known` is False when the change log no longer reaches back far enough to tell.
        """
        async with (
            self._lock,
            self._conn.execute(
                "SELECT type, body FROM changes WHERE key = ? AND rv <= ? ORDER BY rv DESC LIMIT 1",
                (key, rv),
            ) as cur,
        ):
            row = await cur.fetchone()
        if row is None:
            return self.compacted == 0, None
        return True, None if row[0] == "DELETED" else json.loads(row[1])

    async def compact(self) -> None:
        """Drop change-log entries older than the retention window."""
        async with self._lock:
            await self._compact_locked()

    async def _checkpoint(self) -> None:
        """Copy the WAL back into the database file (PASSIVE: readers are not waited for)
        on aiosqlite's thread, so that its fsyncs never stall the event loop, and after
        the batch that made it due was answered, so that they delay no answer either. A
        failed checkpoint is logged; the WAL grows until the next one succeeds."""
        self._since_checkpoint = 0
        async with self._lock:
            try:
                async with self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)") as cursor:
                    await cursor.fetchall()  # a statement left open would fail the next commit
            except sqlite3.Error:
                log.exception(
                    "the WAL checkpoint failed; the next is due in %d changes", CHECKPOINT_EVERY
                )

    async def _compact_locked(self) -> None:
        self._since_compaction = 0
        horizon = self.revision - self._retention
        if horizon <= self.compacted:
            return
        await self._conn.execute("DELETE FROM changes WHERE rv <= ?", (horizon,))
        await self._conn.execute("UPDATE meta SET compacted = ? WHERE id = 1", (horizon,))
        await self._conn.commit()
        self.compacted = horizon
