"""Parsing one line of a watch stream into what it means for the watcher (pure).

A line is an object event, a bookmark, an in-stream error (410 Expired and friends), or
something to skip with a warning: malformed JSON, an unknown event type, an object of
another kind or version, or an object without a name (docs/guarantees.md: E8, E10).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.effects import api_json
from engine.watchers.change import ChangeType
from engine.watchers.resource import Kind

_OBJECT_EVENT_TYPES = {
    "ADDED": ChangeType.ADDED,
    "MODIFIED": ChangeType.MODIFIED,
    "DELETED": ChangeType.DELETED,
}


@dataclass(frozen=True)
class ObjectEvent:
    """ADDED, MODIFIED or DELETED of one object."""

    type: ChangeType
    obj: dict[str, Any]
    resource_version: str


@dataclass(frozen=True)
class Bookmark:
    """The server has sent everything up to `resource_version`: resume from here."""

    resource_version: str


@dataclass(frozen=True)
class StreamError:
    """An ERROR event (its object is a Status): 410 means the resume point is compacted;
    `too_large` that the server has not reached it (`too_large_status`)."""

    code: int
    reason: str
    message: str
    retry_after_seconds: float | None = None
    too_large: bool = False


TOO_LARGE_CAUSE = "ResourceVersionTooLarge"
TOO_LARGE_MESSAGE = "Too large resource version"


def too_large_status(status: Mapping[str, Any]) -> bool:
    """Whether a `Status` refuses a resourceVersion the server has not reached (pure).

    kube-apiserver answers such a list or watch, after a short wait, with 504 Timeout and
    the cause `ResourceVersionTooLarge`; older servers only say so in the message. A
    client relists on it, as on 410: an API server restored from a backup never reaches
    the versions its clients saw before the restore."""
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, Mapping) else None
    if isinstance(causes, list) and any(
        isinstance(c, Mapping) and c.get("reason") == TOO_LARGE_CAUSE for c in causes
    ):
        return True
    return TOO_LARGE_MESSAGE in str(status.get("message") or "")


@dataclass(frozen=True)
class Skipped:
    """A line that carries nothing usable; `why` goes into the warning."""

    why: str


WatchLine = ObjectEvent | Bookmark | StreamError | Skipped


def _excerpt(line: bytes) -> str:
    text = line.decode("utf-8", errors="replace").strip()
    return text if len(text) <= 120 else text[:117] + "..."


def _status_error(status: Mapping[str, Any]) -> StreamError:
    code = status.get("code")
    details = status.get("details")
    retry = details.get("retryAfterSeconds") if isinstance(details, dict) else None
    return StreamError(
        code=code if isinstance(code, int) else 0,
        reason=str(status.get("reason") or ""),
        message=str(status.get("message") or ""),
        retry_after_seconds=float(retry) if isinstance(retry, int | float) else None,
        too_large=too_large_status(status),
    )


def parse_watch_line(line: bytes, kind: Kind) -> WatchLine:
    """Interpret one watch line for a watcher of `kind`.

    Guarantees: never raises on bad input; anything unusable becomes `Skipped` with the
    reason. An object whose ``apiVersion``/``kind`` are present and differ from `kind`'s is
    skipped; when absent they are filled in. A bare Status line (the server's error body
    sent on the stream) becomes a `StreamError`.
    """
    try:
        document = api_json.loads(line)
    except (ValueError, RecursionError):
        return Skipped(f"malformed watch line: {_excerpt(line)!r}")
    if not isinstance(document, dict):
        return Skipped(f"watch line is not a JSON object: {_excerpt(line)!r}")
    event_type = document.get("type")
    obj = document.get("object")
    if event_type is None and document.get("kind") == "Status":
        return _status_error(document)
    if not isinstance(event_type, str) or not isinstance(obj, dict):
        return Skipped(f"watch line without type or object: {_excerpt(line)!r}")
    metadata = obj.get("metadata")
    if event_type == "ERROR":
        return _status_error(obj)
    if event_type == "BOOKMARK":
        version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
        if not isinstance(version, str) or not version:
            return Skipped("bookmark without metadata.resourceVersion")
        return Bookmark(version)
    change_type = _OBJECT_EVENT_TYPES.get(event_type)
    if change_type is None:
        return Skipped(f"unknown watch event type {event_type!r}")
    found_api_version = obj.get("apiVersion", kind.api_version)
    found_kind = obj.get("kind", kind.kind)
    if found_api_version != kind.api_version or found_kind != kind.kind:
        return Skipped(
            f"event for {found_kind} {found_api_version} on a watch of "
            f"{kind.kind} {kind.api_version}"
        )
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        return Skipped(f"{event_type} event for an object without metadata.name")
    version = metadata.get("resourceVersion")
    if not isinstance(version, str) or not version:
        return Skipped(f"{event_type} event without metadata.resourceVersion")
    filled = {"apiVersion": kind.api_version, "kind": kind.kind, **obj}
    return ObjectEvent(type=change_type, obj=filled, resource_version=version)
