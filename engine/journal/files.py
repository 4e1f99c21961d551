"""The journal's files on disk: path checks, private modes (0600/0700), the writer lock.

The lock is an `fcntl.flock` on a sidecar `PATH.lock` held for the writer's lifetime
(SQLite's `locking_mode=EXCLUSIVE` would also shut out WAL readers in other processes).
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from engine.journal.errors import JournalLocked, JournalUnavailable

FILE_MODE = 0o600
DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class WriterLock:
    """A held writer lock: the open file descriptor of `PATH.lock`."""

    path: Path
    fd: int

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases the flock)."""
        os.close(self.fd)


def check_readable(path: Path) -> None:
    """Refuse a path that cannot be read as a journal file.

    Errors: `JournalUnavailable` for a directory, a missing file or an unreadable one.
    """
    if path.is_dir():
        raise JournalUnavailable(
            f"journal {path} is a directory: pass the path of a journal file, "
            f"for example {path / 'journal.db'}"
        )
    if not path.exists():
        raise JournalUnavailable(f"journal {path} does not exist: check the path")
    if not os.access(path, os.R_OK):
        raise JournalUnavailable(
            f"journal {path} is not readable by this user: run as its owner or fix its "
            "permissions (chmod 600 as the owner)"
        )


def prepare_writable(path: Path) -> bool:
    """Make `path` ready for a writer: its directory 0700 (when created here), the file
    0600 (when created here), both writable. Returns whether the file was created here.

    Errors: `JournalUnavailable` naming the path and what to do.
    """
    if path.is_dir():
        check_readable(path)
    parent = path.parent
    try:
        _make_private_dirs(parent)
    except OSError as bad:
        raise JournalUnavailable(
            f"cannot create the journal directory {parent}: {bad.strerror}; "
            "choose a writable location"
        ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise JournalUnavailable(
            f"journal directory {parent} is read-only: the journal needs it writable for its "
            "-wal, -shm and .lock files; choose a writable location"
        )
    if path.exists():
        check_readable(path)
        if not os.access(path, os.W_OK):
            raise JournalUnavailable(
                f"journal {path} is read-only: make it writable, or read it with "
                "`engine journal check` / `engine journal export`"
            )
        return False
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        return False
    except OSError as bad:
        raise JournalUnavailable(
            f"cannot create journal {path}: {bad.strerror}; choose a writable location"
        ) from None
    try:
        os.fchmod(fd, FILE_MODE)  # the umask may have narrowed or widened O_CREAT's mode
    finally:
        os.close(fd)
    return True


def _make_private_dirs(directory: Path) -> None:
    missing: list[Path] = []
    probe = directory
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for created in reversed(missing):
        created.mkdir(mode=DIR_MODE)
        os.chmod(created, DIR_MODE)


def acquire_writer_lock(path: Path) -> WriterLock:
    """Take the exclusive, non-blocking writer lock of journal `path`.

    Errors: `JournalLocked` when another open writer (any process) holds it.
    """
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, FILE_MODE)
    except OSError as bad:
        raise JournalUnavailable(
            f"cannot create the lock file {lock_path}: {bad.strerror}; choose a writable location"
        ) from None
    try:
        os.fchmod(fd, FILE_MODE)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalLocked(
            f"journal {path} is open for writing by another process (lock {lock_path}): "
            "stop that process, or read the journal with `engine journal check`"
        ) from None
    return WriterLock(lock_path, fd)


def tighten_sidecars(path: Path) -> None:
    """Set 0600 on the `-wal` and `-shm` files of `path` where they exist.

    SQLite creates them with the database file's mode already; this covers a database
    file that was created 0644 by an older tool.
    """
    for suffix in ("-wal", "-shm"):
        sidecar = path.with_name(path.name + suffix)
        try:
            os.chmod(sidecar, FILE_MODE)
        except FileNotFoundError:
            continue


def sync_directory(directory: Path) -> None:
    """fsync `directory`, so that a rename or a new file in it survives a crash."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sqlite_uri(path: Path, *, readonly: bool) -> str:
    """The SQLite URI of `path`.

    A reader of a WAL file needs to create its `-shm`; where the directory is read-only
    and no `-wal` holds data, the file cannot change under us, so it is opened immutable.
    """
    absolute = os.path.abspath(path)
    uri = f"file:{quote(absolute)}?mode={'ro' if readonly else 'rw'}"
    if readonly and not os.access(os.path.dirname(absolute), os.W_OK):
        wal = absolute + "-wal"
        if not os.path.exists(wal) or os.path.getsize(wal) == 0:
            uri += "&immutable=1"
    return uri
