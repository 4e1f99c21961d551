"""Every Kubernetes Event the engine posts goes through `EventRecorder`: the name formula
(`<object>.<uid prefix>.<suffix>`, so a repeat of the same fact names the same Event)
and the rule that a failed Event write is logged and never fails the reconcile."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from engine.effects.errors import PermanentError, RetryableError

log = logging.getLogger(__name__)


class EventWriter(Protocol):
    """Posts one Event about an object (the cluster writer's `record_event`)."""

    async def record_event(
        self,
        obj: Mapping[str, Any],
        *,
        name: str,
        reason: str,
        message: str,
        warning: bool,
        now: datetime,
    ) -> Any: ...


class EventRecorder:
    """`await post(obj, suffix=..., reason=..., message=...)`: best effort, never raises.

    `enabled=False` posts nothing (the `record_events` setting)."""

    def __init__(self, writer: EventWriter, *, enabled: bool = True) -> None:
        self._writer = writer
        self._enabled = enabled

    @property
    def enabled(self) -> bool:
        return self._enabled

    async def post(
        self,
        obj: Mapping[str, Any],
        *,
        suffix: str,
        reason: str,
        message: str,
        warning: bool,
        now: datetime,
    ) -> None:
        if not self._enabled:
            return
        metadata = obj.get("metadata") or {}
        uid = str(metadata.get("uid") or "")
        name = f"{metadata.get('name')}.{uid[:8]}.{suffix}"
        try:
            await self._writer.record_event(
                obj, name=name, reason=reason, message=message, warning=warning, now=now
            )
        except (RetryableError, PermanentError) as error:
            log.warning(
                "could not record the %s event of %s: %s", reason, name, type(error).__name__
            )
