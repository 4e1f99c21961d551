"""The narrow interfaces the reconcile core is built on: what it writes to the cluster
(`ClusterWriter`, which the Kubernetes writer implements and replay and tests implement in
memory) and the effect runner it runs handlers and steps through (`EffectRunning`, live
or replaying). Both block only on I/O (`async def`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from engine.effects import EffectCall, Mode
from engine.identity import Kind


class ClusterWriter(Protocol):
    """The engine's writes to the API server, each returning the object it left.

    Errors: `RetryableError` (409, 429, 5xx, a lost connection; `.delay` a lower bound)
    and `PermanentError` (403, 422, ...), as the Kubernetes writer raises them."""

    async def add_finalizer(
        self, kind: Kind, obj: Mapping[str, Any], finalizer: str
    ) -> Mapping[str, Any]: ...

    async def remove_finalizer(
        self, kind: Kind, obj: Mapping[str, Any], finalizer: str
    ) -> Mapping[str, Any] | None:
        """None when the object is gone (its last finalizer went)."""
        ...

    async def patch_status(
        self, kind: Kind, obj: Mapping[str, Any], status: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """None when the object is gone."""
        ...

    async def apply(self, kind: Kind, manifest: Mapping[str, Any]) -> Mapping[str, Any]:
        """Server-side apply of a child; the live child."""
        ...

    async def record_event(
        self,
        involved: Mapping[str, Any],
        *,
        name: str,
        reason: str,
        message: str,
        warning: bool = False,
        now: datetime | None = None,
    ) -> None: ...


class EffectRunning(Protocol):
    """Runs a named effect of a stream under its idempotency key (see `EffectRunner`)."""

    @property
    def mode(self) -> Mode: ...

    async def run(self, stream: str, key: str, name: str, call: EffectCall) -> Any: ...

    def forget(self, stream: str) -> None: ...
