"""The Kubernetes `Status` error body and the exception that carries it to the HTTP layer."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
}


class ApiError(Exception):
    """A request failed; `status()` is the one-line Status body the client receives."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = dict(details or {})

    def status(self) -> dict[str, Any]:
        """The `Status` object for this error (kind Status, apiVersion v1, status Failure)."""
        return status_body(self.code, self.message, reason=self.reason, details=self.details)


def status_body(
    code: int,
    message: str,
    *,
    reason: str,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A failure `Status`; `details` may hold name, group, kind and causes."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = dict(details)
    return body


def success_status(details: Mapping[str, Any]) -> dict[str, Any]:
    """The `Status{status: Success}` answered by a delete that removed the object at once."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": dict(details),
    }


def not_found(kind_plural: str, name: str, *, group: str) -> ApiError:
    """404 for `name` of resource `kind_plural`, worded like the real server."""
    shown = f"{kind_plural}.{group}" if group else kind_plural
    return ApiError(
        404,
        f'{shown} "{name}" not found',
        details={"name": name, "group": group, "kind": kind_plural},
    )


def already_exists(kind_plural: str, name: str, *, group: str) -> ApiError:
    """409 AlreadyExists for a create of an existing name."""
    shown = f"{kind_plural}.{group}" if group else kind_plural
    return ApiError(
        409,
        f'{shown} "{name}" already exists',
        reason="AlreadyExists",
        details={"name": name, "group": group, "kind": kind_plural},
    )


def conflict(kind_plural: str, name: str, *, group: str) -> ApiError:
    """409 Conflict for a stale resourceVersion or a failed precondition."""
    shown = f"{kind_plural}.{group}" if group else kind_plural
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {shown} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        reason="Conflict",
        details={"name": name, "group": group, "kind": kind_plural},
    )


def invalid(kind: str, name: str, *, group: str, causes: Sequence[Mapping[str, str]]) -> ApiError:
    """422 Invalid with field causes, the message listing each cause like the real server."""
    shown = f"{kind}.{group}" if group else kind
    listed = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    noun = "is invalid" if not listed else f"is invalid: {listed}"
    if len(causes) > 1:
        noun = f"is invalid: [{listed}]"
    return ApiError(
        422,
        f'{shown} "{name}" {noun}',
        reason="Invalid",
        details={"name": name, "group": group, "kind": kind, "causes": list(causes)},
    )


def dumps(body: Any) -> bytes:
    """Compact single-line JSON (error bodies and watch events must stay on one line).

    orjson writes it (several times faster than the standard library on these bodies);
    what orjson refuses (an integer beyond 64 bits, a key that is not a string) goes
    through `json` as before.
    """
    try:
        return orjson.dumps(body)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(body, separators=(",", ":")).encode()
