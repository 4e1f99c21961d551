"""The audit log: one JSON line per request (verb, group, resource, subresource, namespace,
name, status code, path, User-Agent, user name), appended and flushed, the file created
with mode 0600."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from engine.apiserver.store.errors import dumps


@dataclass(frozen=True)
class AuditEntry:
    """One request as the audit log records it; verb is the Kubernetes verb, `user_agent`
    the client's User-Agent header (which client sent it, as in a Kubernetes audit event),
    `user` the authenticated user's name ("" when authentication failed)."""

    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int
    path: str
    user_agent: str = ""
    user: str = ""


class AuditLog:
    """An append-only JSON-lines file; `close()` when the server stops."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file: IO[str] = os.fdopen(fd, "a", encoding="utf-8")

    def record(self, entry: AuditEntry) -> None:
        """Append `entry` as one line and flush it."""
        self._file.write(dumps(vars(entry)).decode() + "\n")  # the fields, in order
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()
