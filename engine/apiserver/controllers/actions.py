"""What a controller's planning asks for, as data: objects to create, update or delete,
a status to set, an Event to record. `controllers.applier` carries them out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EventNote:
    """A Kubernetes Event about `involved` (an object): reason, message, type."""

    involved: Mapping[str, Any]
    reason: str
    message: str
    type: str = "Normal"
    component: str = ""


@dataclass(frozen=True)
class CreateObject:
    """Create `body` (a full object, kind and apiVersion set) in `namespace`.

    `event` is recorded once it exists; "{name}" in its message becomes the created name.
    """

    body: Mapping[str, Any]
    namespace: str
    event: EventNote | None = None


@dataclass(frozen=True)
class UpdateObject:
    """Replace the object at `key` (as read at `resource_version`) with `body`; stale: skip."""

    key: str
    resource_version: str
    body: Mapping[str, Any]
    event: EventNote | None = None


@dataclass(frozen=True)
class SetStatus:
    """Set `.status` of the object at `key` to `status` (a status-subresource write)."""

    key: str
    status: Mapping[str, Any]


@dataclass(frozen=True)
class DeleteObject:
    """Delete the object at `key` (propagation `policy`), then record `event`."""

    key: str
    policy: str = "Background"
    event: EventNote | None = None


@dataclass(frozen=True)
class RecordEvent:
    """Record an Event on its own."""

    event: EventNote


Action = CreateObject | UpdateObject | SetStatus | DeleteObject | RecordEvent


@dataclass(frozen=True)
class Plan:
    """A controller's answer for one object: the actions, in order."""

    actions: tuple[Action, ...] = field(default=())
