"""The example registry service's state and rules, without HTTP: fencing, idempotency, the log.

One `RegistryState` decides every call: a term below the highest seen is stale (409); a
repeated idempotency key gets the recorded reply without applying again; anything else is
applied once. It saves itself as one JSON file (written atomically) when given a path.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Outcome = Literal["applied", "replayed", "stale", "conflict", "unavailable"]


@dataclass(frozen=True)
class CallRecord:
    """One call as the oracle saw it; `reply_lost` marks an applied call answered with 503."""

    method: str
    name: str
    idempotency_key: str
    term: int
    at: float
    outcome: Outcome
    reply_lost: bool = False


@dataclass(frozen=True)
class Reply:
    """An HTTP status and JSON body."""

    status: int
    body: dict[str, Any]


@dataclass
class RegistryState:
    """Registrations, idempotency records, the call log and applied counts (mutable: the
    service's one piece of state, changed only through `decide`)."""

    registrations: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> request, reply
    applied: dict[str, int] = field(default_factory=dict)
    calls: list[CallRecord] = field(default_factory=list)
    highest_term: int = 0

    def decide(
        self,
        *,
        method: Literal["PUT", "DELETE"],
        name: str,
        key: str,
        term: int,
        spec: dict[str, Any] | None,
        at: float,
    ) -> Reply:
        """Apply or refuse one call and log it; the reply to send back."""
        call = {"method": method, "name": name, "key": key, "term": term, "at": at}
        if term < self.highest_term:
            self._log(call, "stale")
            return Reply(409, {
                "error": "stale fencing term",
                "term": term,
                "highest_term": self.highest_term,
            })  # fmt: skip
        self.highest_term = term
        fingerprint = _fingerprint(method, name, spec)
        record = self.records.get(key)
        if record is not None:
            if record["fingerprint"] != fingerprint:
                self._log(call, "conflict")
                return Reply(422, {"error": "idempotency key reused for a different request"})
            self._log(call, "replayed")
            return Reply(record["status"], record["body"])
        reply = self._apply(method=method, name=name, key=key, term=term, spec=spec)
        self.records[key] = {"fingerprint": fingerprint, "status": reply.status, "body": reply.body}
        self.applied[key] = self.applied.get(key, 0) + 1
        self._log(call, "applied")
        return reply

    def _apply(
        self, *, method: str, name: str, key: str, term: int, spec: dict[str, Any] | None
    ) -> Reply:
        if method == "DELETE":
            deleted = self.registrations.pop(name, None) is not None
            return Reply(200, {"name": name, "deleted": deleted})
        previous = self.registrations.get(name)
        revision = 1 if previous is None else int(previous["revision"]) + 1
        registration = {
            "name": name,
            "spec": spec or {},
            "revision": revision,
            "term": term,
            "idempotency_key": key,
        }
        self.registrations[name] = registration
        return Reply(200, registration)

    def log_unavailable(self, *, method: str, name: str, key: str, term: int, at: float) -> None:
        """Record a call refused by an injected fault before it was looked at."""
        self._log({"method": method, "name": name, "key": key, "term": term, "at": at},
                  "unavailable")  # fmt: skip

    def mark_reply_lost(self) -> None:
        """Mark the last logged call as applied but answered with an injected 503."""
        last = self.calls[-1]
        self.calls[-1] = CallRecord(**{**asdict(last), "reply_lost": True})

    def _log(self, call: dict[str, Any], outcome: Outcome) -> None:
        self.calls.append(
            CallRecord(
                method=call["method"],
                name=call["name"],
                idempotency_key=call["key"],
                term=call["term"],
                at=call["at"],
                outcome=outcome,
            )
        )

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the whole state to `path` atomically (temporary file, fsync, rename)."""
        document = {
            "registrations": self.registrations,
            "records": self.records,
            "applied": self.applied,
            "calls": [asdict(call) for call in self.calls],
            "highest_term": self.highest_term,
        }
        temporary = path.with_name(path.name + ".tmp")
        with temporary.open("w") as handle:
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> RegistryState:
        """Read a state saved by `save`; a missing file is an empty state.

        Errors: `ValueError` naming the file when it is not a saved registry state.
        """
        if not path.exists():
            return cls()
        try:
            document = json.loads(path.read_text())
            return cls(
                registrations=dict(document["registrations"]),
                records=dict(document["records"]),
                applied={str(key): int(count) for key, count in document["applied"].items()},
                calls=[CallRecord(**call) for call in document["calls"]],
                highest_term=int(document["highest_term"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(
                f"{path} is not a registry state file ({type(error).__name__}); "
                "move it away or pass another --state"
            ) from None


def _fingerprint(method: str, name: str, spec: dict[str, Any] | None) -> str:
    canonical = json.dumps([method, name, spec], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
