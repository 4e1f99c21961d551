"""When a child is ready: the checks `Context.wait_for_child` applies to a live child.

A check returns None when the child is ready, else a short phrase saying what it still
lacks (it ends up in the resource's status reason and the journal); a check raises
`PermanentError` for a child that can never become ready. The built-in checks
read the workload status the way `kubectl rollout status` does; any other kind is ready
once it exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.effects.errors import PermanentError

ChildReady = Callable[[Mapping[str, Any]], "str | None"]
"""Why a live child is not ready yet (a short phrase), or None when it is."""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _observed(live: Mapping[str, Any]) -> str | None:
    """Whether the workload's controller has seen the newest spec (status.observedGeneration)."""
    generation = _int((live.get("metadata") or {}).get("generation"))
    observed = _int((live.get("status") or {}).get("observedGeneration"))
    if observed < generation:
        return f"generation {generation} not observed yet"
    return None


def deployment_available(live: Mapping[str, Any]) -> str | None:
    """A Deployment is available when its newest generation is rolled out: every replica
    updated, none of the old ones left, and every one available."""
    waiting = _observed(live)
    if waiting is not None:
        return waiting
    spec = live.get("spec") or {}
    status = live.get("status") or {}
    wanted = _int(spec.get("replicas", 1))
    updated = _int(status.get("updatedReplicas"))
    if updated < wanted:
        return f"{updated} of {wanted} replicas updated"
    old = _int(status.get("replicas")) - updated
    if old > 0:
        return f"{old} old replicas pending termination"
    available = _int(status.get("availableReplicas"))
    if available < wanted:
        return f"{available} of {wanted} replicas available"
    return None


def statefulset_ready(live: Mapping[str, Any]) -> str | None:
    """A StatefulSet is ready when every replica of its newest generation is ready."""
    waiting = _observed(live)
    if waiting is not None:
        return waiting
    wanted = _int((live.get("spec") or {}).get("replicas", 1))
    ready = _int((live.get("status") or {}).get("readyReplicas"))
    if ready < wanted:
        return f"{ready} of {wanted} replicas ready"
    return None


def job_complete(live: Mapping[str, Any]) -> str | None:
    """A Job is ready when its Complete condition is True; a Failed one never will be
    (`PermanentError`)."""
    for condition in (live.get("status") or {}).get("conditions") or ():
        if not isinstance(condition, Mapping) or condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return None
        if condition.get("type") == "Failed":
            reason = condition.get("reason") or "no reason given"
            name = (live.get("metadata") or {}).get("name")
            raise PermanentError(f"Job {name} failed ({reason}): {condition.get('message') or ''}")
    succeeded = _int((live.get("status") or {}).get("succeeded"))
    return f"{succeeded} pods succeeded, not complete"


def exists(live: Mapping[str, Any]) -> str | None:
    """Any other kind: ready once it exists."""
    return None


_BY_KIND: dict[tuple[str, str], ChildReady] = {
    ("apps", "Deployment"): deployment_available,
    ("apps", "StatefulSet"): statefulset_ready,
    ("batch", "Job"): job_complete,
}


def readiness_of(api_version: str, kind: str) -> ChildReady:
    """The built-in check for a kind (`exists` for a kind without one)."""
    group = api_version.rpartition("/")[0]
    return _BY_KIND.get((group, kind), exists)
