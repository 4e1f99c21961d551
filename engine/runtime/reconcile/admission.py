"""What an operator's admission and conversion handlers are given and may raise.

`validate` and `mutate` handlers receive one `AdmissionRequest`; `validate` refuses with
`Rejected`, `mutate` returns the object as it should be stored. Converters are plain
functions of one object (a mapping) to another, one pair per served version, to and from
the storage version (hub and spoke). The engine serves them as webhooks (engine.webhooks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


@dataclass(frozen=True)
class UserInfo:
    """Who asked: the authenticated user of the request the API server admits."""

    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdmissionRequest:
    """One request to admit, as the API server sent it (AdmissionReview v1 `request`).

    `object` is the object to store (None for DELETE), `old_object` the stored one (None
    for CREATE). `dry_run`: nothing will be stored, so a handler must not act on it.
    """

    uid: str
    operation: Operation
    namespace: str
    name: str
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None
    user: UserInfo = field(default_factory=UserInfo)
    dry_run: bool = False
    kind: str = ""
    version: str = ""


class Rejected(Exception):
    """Raise it from `validate` to refuse the request; `message` is what the client sees
    (name the rule). `code` is the HTTP status of the refusal (default 403, upstream's)."""

    def __init__(self, message: str, *, code: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


ValidateHandler = Callable[[AdmissionRequest], "Awaitable[None] | None"]
"""Returns (or resolves to) None to allow; raises `Rejected` to refuse."""

MutateHandler = Callable[[AdmissionRequest], "Mapping[str, Any] | Awaitable[Any] | None"]
"""Returns (or resolves to) the object as it should be stored; None: unchanged."""

Converter = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""One object of one version to the same object in another version (pure)."""


@dataclass(frozen=True)
class ServedVersion:
    """A version of the resource besides its storage version (the hub).

    `to_hub` turns an object of this version into the storage version, `from_hub` back;
    both must keep every field (a field the other version lacks goes in an annotation),
    which the engine checks on every conversion. The engine sets `apiVersion`.
    """

    name: str
    schema: Mapping[str, Any]
    to_hub: Converter
    from_hub: Converter
    printer_columns: tuple[Mapping[str, Any], ...] = ()
