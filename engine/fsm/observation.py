"""What the watcher saw of one object, reduced to the plain values decide needs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Observation:
    """The latest view of a custom resource, as plain values (level-based, never an event).

    `exists` is False once the API server reported the object deleted; the other fields
    then hold its last known values. `status_*` are what the object's status says now, so
    decide can tell whether a `PatchStatus` is still needed. `child_drift` is True when a
    child the engine owns differs from what provisioning last applied. `restored` is True
    when a list showed the object behind what the journal holds of it (an API server
    restored from a backup: an older generation, or an object whose stream is Deleted
    live again): its fold starts a new round of idempotency keys (`fold`).
    """

    uid: str
    generation: int
    resource_version: str = ""
    spec_digest: str = ""
    exists: bool = True
    deletion_requested: bool = False
    has_finalizer: bool = False
    child_drift: bool = False
    status_phase: str | None = None
    status_observed_generation: int | None = None
    status_reason: str | None = None
    restored: bool = False
