"""The journal records of webhook decisions: type names, stream, builders, display.

Decisions go on a stream of their own per object, `group/Kind/namespace/name#webhooks`:
an object being created has no uid yet (so no resource stream), and the resource stream
has one appender (the reconciler's StreamWriter, holding its expected version); the
webhook stream sits beside it, so `engine replay --resource NS/NAME` and `engine why`
find both. Payloads hold no object content: who, the operation, the object's reference,
allowed or the (redacted) reason, and the sha256 digest of the JSON patch.
Type names and payload fields are persisted: add, never rename.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from engine.identity import StreamId
from engine.journal.record import NewEvent

ADMISSION_DECIDED: Final = "AdmissionDecided"
CONVERSION_FAILED: Final = "ConversionFailed"
WEBHOOK_TYPES: Final = (ADMISSION_DECIDED, CONVERSION_FAILED)
WEBHOOK_STREAM_UID: Final = "webhooks"
"""The uid part of every webhook stream's name (real uids are never this word)."""
MAX_MESSAGE = 500

Result = Literal["allowed", "rejected", "error"]


def webhook_stream(*, group: str, kind: str, namespace: str, name: str) -> str:
    """The stream of the webhook decisions about one object (by name, across uids)."""
    return str(StreamId(group, kind, namespace, name, WEBHOOK_STREAM_UID))


def is_webhook_stream(stream: str) -> bool:
    return StreamId.parse(stream).uid == WEBHOOK_STREAM_UID


@dataclass(frozen=True, slots=True)
class AdmissionDecision:
    """One admission answer: what the engine told the API server, and why.

    `result`: allowed, rejected (the handler refused, or its answer broke a rule) or
    error (it raised or timed out: an HTTP 500, the server applies failurePolicy).
    """

    handler: str
    request_uid: str
    operation: str
    namespace: str
    name: str
    username: str
    result: Result
    code: int
    message: str
    patch_digest: str | None
    patch_operations: int
    dry_run: bool
    seconds: float

    def event(self) -> NewEvent:
        """The `AdmissionDecided` record (once per request uid and handler)."""
        data: dict[str, Any] = {
            "handler": self.handler,
            "request_uid": self.request_uid,
            "operation": self.operation,
            "user": self.username,
            "result": self.result,
            "code": self.code,
            "message": self.message[:MAX_MESSAGE],
            "patch_digest": self.patch_digest,
            "patch_operations": self.patch_operations,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 6),
        }
        return NewEvent(
            type=ADMISSION_DECIDED,
            data=data,
            idempotency_key=f"admission:{self.request_uid}:{self.handler}",
        )


def conversion_failed(*, request_uid: str, source: str, desired: str, message: str) -> NewEvent:
    """`ConversionFailed`: an object the converters could not convert without loss."""
    return NewEvent(
        type=CONVERSION_FAILED,
        data={
            "request_uid": request_uid,
            "from": source,
            "to": desired,
            "message": message[:MAX_MESSAGE],
        },
    )


def describe(kind: str, data: Mapping[str, Any]) -> str | None:
    """A webhook record as one plain phrase (for timelines and `why`); None: not one."""
    if kind == ADMISSION_DECIDED:
        who = data.get("user") or "?"
        dry = " (dry run)" if data.get("dry_run") else ""
        head = f"{data.get('handler')} {data.get('operation')} by {who}{dry}"
        result = data.get("result")
        if result == "allowed":
            patch = data.get("patch_digest")
            if patch:
                count = data.get("patch_operations")
                return f"{head}: allowed, patched ({count} ops, {str(patch)[:19]})"
            return f"{head}: allowed"
        return f"{head}: {result} ({data.get('code')}): {data.get('message')}"
    if kind == CONVERSION_FAILED:
        return f"conversion {data.get('from')} → {data.get('to')} failed: {data.get('message')}"
    return None
