"""A new API server database from a backup copy, its revision bumped past anything a
client can hold and everything below marked compacted (what `etcdutl snapshot restore
--bump-revision N --mark-compacted` does for etcd).

A server started on the plain copy is back at the backup's revision: a watch resuming
from a version the copy has not reached is refused (504 `ResourceVersionTooLarge`), but
once the restored server's own writes pass that version the watch resumes without an
error and misses what changed. After the bump, every watch, and every list continued or
read exactly at a version from before the restore, is 410 Expired, and the client
relists. Objects keep their resourceVersions (they are below the new revision, as etcd
keeps each key's modification revision); the change log is emptied (it is compacted).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BUMP = 1_000_000
"""How far the revision jumps by default: more writes than a client's resume point can
be ahead of the backup by."""

_TABLES = {"objects", "changes", "meta"}


class RestoreError(Exception):
    """The backup cannot be restored to the target: the message names which and why."""


@dataclass(frozen=True)
class Restored:
    """What a restore wrote: the backup's revision, the new one (also the new compacted
    revision) and how many objects the database holds."""

    backup_revision: int
    revision: int
    objects: int


def restore_database(backup: Path, db: Path, *, bump: int = DEFAULT_BUMP) -> Restored:
    """Write `db`, a new database holding the objects of `backup`, at the backup's
    revision plus `bump`, compacted up to that revision (no change log).

    `db` must not exist yet (nor its `-wal`): a restore never writes over a database, and
    a write-ahead log left next to a new file would be read as its own. The copy is made
    next to `db` and renamed into place once complete, so an interrupted restore leaves
    no `db`. RestoreError names what is wrong otherwise.
    """
    if bump < 1:
        raise RestoreError(f"bump {bump}: the revision must move forward; give 1 or more")
    if not backup.is_file():
        raise RestoreError(f"backup {backup}: no such file")
    for existing in (db, Path(f"{db}-wal")):
        if existing.exists():
            raise RestoreError(
                f"{existing} exists; move it away first (a restore writes a new database)"
            )
    if not db.resolve().parent.is_dir():
        raise RestoreError(f"{db}: the directory does not exist; create it first")
    partial = db.with_name(f"{db.name}.restoring")
    partial.unlink(missing_ok=True)
    try:
        restored = _copy_bumped(backup, partial, bump)
        os.replace(partial, db)
    finally:
        partial.unlink(missing_ok=True)
    return restored


def _copy_bumped(backup: Path, target: Path, bump: int) -> Restored:
    try:
        read_only = f"{backup.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(read_only, uri=True)) as source:
            tables = {
                str(row[0])
                for row in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if not _TABLES.issubset(tables):
                held = ", ".join(sorted(tables)) or "none"
                raise RestoreError(
                    f"backup {backup} is not an API server database (its tables: {held})"
                )
            with contextlib.closing(sqlite3.connect(target)) as copy:
                source.backup(copy)
                return _bump(copy, bump, backup)
    except sqlite3.DatabaseError as bad:
        raise RestoreError(f"backup {backup} is not a usable SQLite database: {bad}") from None


def _bump(copy: sqlite3.Connection, bump: int, backup: Path) -> Restored:
    """Move the copy's revision on by `bump`, mark everything below it compacted and
    empty the change log, in one transaction; the copy leaves WAL mode (the server sets
    it again on open), so the renamed file is the whole database."""
    copy.execute("PRAGMA journal_mode=DELETE")
    row = copy.execute("SELECT revision FROM meta WHERE id = 1").fetchone()
    if row is None:
        raise RestoreError(f"backup {backup}: its meta table holds no revision")
    backup_revision = int(row[0])
    revision = backup_revision + bump
    with copy:
        copy.execute(
            "UPDATE meta SET revision = ?, compacted = ? WHERE id = 1", (revision, revision)
        )
        copy.execute("DELETE FROM changes")
    (objects,) = copy.execute("SELECT count(*) FROM objects").fetchone()
    return Restored(backup_revision=backup_revision, revision=revision, objects=int(objects))
