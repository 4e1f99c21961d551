"""The status the engine writes: phase, observedGeneration, reason and the conditions
Ready, Provisioning and Failed (pure; `lastTransitionTime` kept while a condition's
status does not change)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.fsm.table import FAILED, PROVISIONING, READY

CONDITION_TYPES = ("Ready", "Provisioning", "Failed")


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _error_class(reason: str | None) -> str:
    if not reason:
        return ""
    head = reason.split(":", 1)[0].strip()
    return head if head.isidentifier() else "Error"


def conditions_for(phase: str, reason: str | None) -> list[dict[str, str]]:
    """The three conditions for `phase` (without times): type, status, reason, message."""
    error = _error_class(reason)
    ready = phase == READY
    provisioning = phase == PROVISIONING
    failed = phase == FAILED
    return [
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": phase,
            "message": "the resource is provisioned" if ready else f"the resource is {phase}",
        },
        {
            "type": "Provisioning",
            "status": "True" if provisioning else "False",
            "reason": ("Retrying" if reason else "Provisioning") if provisioning else phase,
            "message": (reason or "") if provisioning else "",
        },
        {
            "type": "Failed",
            "status": "True" if failed else "False",
            "reason": (error or "Failed") if failed else phase,
            "message": (reason or "") if failed else "",
        },
    ]


def status_body(
    *,
    phase: str,
    observed_generation: int,
    reason: str | None,
    current: Mapping[str, Any] | None,
    now: datetime,
    extra: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The merge patch body of `status` (reason None removes the field).

    `current` is the object's status as the engine last saw it: a condition whose
    `status` is unchanged keeps its `lastTransitionTime`. `extra` are further conditions
    (the supervisor's `Stuck`, `Deadlocked`), written after the three unless the phase is
    Ready, which clears them.
    """
    previous = {
        c.get("type"): c
        for c in ((current or {}).get("conditions") or ())
        if isinstance(c, Mapping)
    }
    stamp = _stamp(now)
    conditions = []
    for condition in conditions_for(phase, reason):
        before = previous.get(condition["type"])
        kept = before is not None and before.get("status") == condition["status"]
        since = str(before.get("lastTransitionTime")) if kept and before else stamp
        conditions.append({**condition, "lastTransitionTime": since})
    if phase != READY:
        conditions.extend(dict(condition) for condition in extra)
    return {
        "phase": phase,
        "observedGeneration": observed_generation,
        "reason": reason,
        "conditions": conditions,
    }
