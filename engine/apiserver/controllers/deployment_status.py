"""A Deployment's status, pure: replica counts over its ReplicaSets, observedGeneration,
and the Available and Progressing conditions `kubectl rollout status` reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.apiserver.controllers import pod_facts as facts
from engine.apiserver.controllers.rollout_bounds import bounds


def _status(rs: Mapping[str, Any] | None, field: str) -> int:
    return int(((rs or {}).get("status") or {}).get(field) or 0)


def deployment_status(
    deployment: Mapping[str, Any],
    new: Mapping[str, Any] | None,
    *,
    replicasets: Sequence[Mapping[str, Any]],
    now: str,
) -> dict[str, Any]:
    """Replica counts, observedGeneration and the Available and Progressing conditions."""
    desired = int((deployment.get("spec") or {}).get("replicas", 1))
    _, unavailable = bounds(deployment)
    replicas = sum(_status(rs, "replicas") for rs in replicasets)
    available = sum(_status(rs, "availableReplicas") for rs in replicasets)
    updated = _status(new, "replicas") if new is not None else 0
    status: dict[str, Any] = {
        "observedGeneration": int(facts.meta(deployment).get("generation") or 1),
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": sum(_status(rs, "readyReplicas") for rs in replicasets),
        "availableReplicas": available,
    }
    if desired - available > 0:
        status["unavailableReplicas"] = desired - available
    old_conditions = list((deployment.get("status") or {}).get("conditions") or ())
    if available >= desired - unavailable:
        availability = {
            "type": "Available",
            "status": "True",
            "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability.",
            "lastUpdateTime": now,
        }
    else:
        availability = {
            "type": "Available",
            "status": "False",
            "reason": "MinimumReplicasUnavailable",
            "message": "Deployment does not have minimum availability.",
            "lastUpdateTime": now,
        }
    name = facts.meta(new).get("name", "") if new is not None else ""
    complete = updated == desired and replicas == desired and available >= desired
    progress = {
        "type": "Progressing",
        "status": "True",
        "reason": "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
        "message": f'ReplicaSet "{name}" has successfully progressed.'
        if complete
        else f'ReplicaSet "{name}" is progressing.',
        "lastUpdateTime": now,
    }
    conditions = facts.set_condition(old_conditions, availability, now=now)
    conditions = facts.set_condition(conditions, progress, now=now)
    order = {"Available": 0, "Progressing": 1}
    status["conditions"] = sorted(conditions, key=lambda c: order.get(c["type"], 2))
    return status


def same_status(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two statuses differ at most in their conditions' timestamps."""

    def strip(status: Mapping[str, Any]) -> dict[str, Any]:
        conditions = [
            {k: v for k, v in c.items() if k not in ("lastUpdateTime", "lastTransitionTime")}
            for c in status.get("conditions") or ()
        ]
        return {**status, "conditions": conditions}

    return strip(a) == strip(b)
