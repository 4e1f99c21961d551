"""Job planning, pure: run Pods from the template until `completions` succeed (at most
`parallelism` at a time), or fail the Job once more than `backoffLimit` Pods failed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.apiserver.controllers import pod_facts as facts
from engine.apiserver.controllers.actions import (
    Action,
    CreateObject,
    DeleteObject,
    EventNote,
    RecordEvent,
    SetStatus,
)
from engine.apiserver.controllers.pod_template import pod_from_template

COMPONENT = "job-controller"


def finished(job: Mapping[str, Any]) -> bool:
    """Whether the Job has a Complete or Failed condition that is True."""
    for kind in ("Complete", "Failed"):
        condition = facts.condition_of(job, kind)
        if condition is not None and condition.get("status") == "True":
            return True
    return False


def _condition(kind: str, reason: str, message: str, now: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    }


def plan_job(
    job: Mapping[str, Any], controlled: Sequence[Mapping[str, Any]], *, now: str
) -> list[Action]:
    """The next actions for `job`, given the Pods it controls; `now` is an RFC 3339 time."""
    meta = facts.meta(job)
    name = str(meta.get("name", ""))
    namespace = str(meta.get("namespace", ""))
    spec = job.get("spec") or {}
    old_status = dict(job.get("status") or {})
    succeeded = sum(1 for p in controlled if facts.phase(p) == "Succeeded")
    failed = sum(1 for p in controlled if facts.phase(p) == "Failed")
    active = [p for p in controlled if facts.is_active(p)]
    status: dict[str, Any] = {
        **old_status,
        "startTime": old_status.get("startTime", now),
        "active": len(active),
        "succeeded": succeeded,
        "failed": failed,
        "ready": sum(1 for p in active if facts.is_ready(p)),
        "terminating": sum(1 for p in controlled if facts.is_deleting(p)),
        "uncountedTerminatedPods": {},
    }
    for zero in ("active", "succeeded", "failed"):
        if not status[zero]:
            status.pop(zero)
    actions: list[Action] = []
    key = f"batch/jobs/{namespace}/{name}"
    if facts.is_deleting(job) or finished(job) or spec.get("suspend"):
        if status != old_status and not finished(job):
            actions.append(SetStatus(key, status))
        return actions
    completions = int(spec.get("completions") or 1)
    if failed > int(spec.get("backoffLimit", 6)):
        reason, message = "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        for pod in active:
            actions.append(DeleteObject(f"/pods/{namespace}/{facts.meta(pod).get('name')}"))
        status["conditions"] = [
            _condition("FailureTarget", reason, message, now),
            _condition("Failed", reason, message, now),
        ]
        actions.append(_event(job, "BackoffLimitExceeded", message, kind="Warning"))
        actions.append(SetStatus(key, status))
        return actions
    if succeeded >= completions:
        status["conditions"] = [
            _condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ),
            _condition(
                "Complete", "CompletionsReached", "Reached expected number of succeeded pods", now
            ),
        ]
        status["completionTime"] = now
        status.pop("active", None)
        actions.append(_event(job, "Completed", "Job completed"))
        actions.append(SetStatus(key, status))
        return actions
    wanted = min(int(spec.get("parallelism", 1)), completions - succeeded) - len(active)
    template = spec.get("template") or {}
    for _ in range(max(0, wanted)):
        event = EventNote(job, "SuccessfulCreate", "Created pod: {name}", component=COMPONENT)
        actions.append(CreateObject(pod_from_template(template, owner=job), namespace, event))
    if status != old_status:
        actions.append(SetStatus(key, status))
    return actions


def _event(job: Mapping[str, Any], reason: str, message: str, *, kind: str = "Normal") -> Action:
    return RecordEvent(EventNote(job, reason, message, type=kind, component=COMPONENT))
