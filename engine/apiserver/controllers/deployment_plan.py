"""Deployment planning, pure: one ReplicaSet per pod-template hash, a rolling update within
maxSurge/maxUnavailable (or Recreate), revision history, status and conditions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.apiserver.controllers import pod_facts as facts
from engine.apiserver.controllers.actions import (
    Action,
    CreateObject,
    DeleteObject,
    EventNote,
    SetStatus,
    UpdateObject,
)
from engine.apiserver.controllers.deployment_status import deployment_status, same_status
from engine.apiserver.controllers.pod_template import (
    TEMPLATE_HASH_LABEL,
    comparable_template,
    template_hash,
)
from engine.apiserver.controllers.rollout_bounds import bounds

COMPONENT = "deployment-controller"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"


def _spec_replicas(rs: Mapping[str, Any]) -> int:
    return int((rs.get("spec") or {}).get("replicas", 0))


def _status(rs: Mapping[str, Any], field: str) -> int:
    return int((rs.get("status") or {}).get(field) or 0)


def _revision(rs: Mapping[str, Any]) -> int:
    raw = (facts.meta(rs).get("annotations") or {}).get(REVISION, "0")
    return int(raw) if str(raw).isdigit() else 0


def _key(kind_prefix: str, obj: Mapping[str, Any]) -> str:
    meta = facts.meta(obj)
    return f"{kind_prefix}/{meta.get('namespace', '')}/{meta.get('name', '')}"


def _rs_key(rs: Mapping[str, Any]) -> str:
    return _key("apps/replicasets", rs)


def new_replicaset(
    deployment: Mapping[str, Any], *, replicas: int, revision: int
) -> dict[str, Any]:
    """The ReplicaSet for the Deployment's current template (name `<deploy>-<hash>`)."""
    spec = deployment.get("spec") or {}
    template = dict(spec.get("template") or {})
    digest = template_hash(template)
    template_meta = dict(template.get("metadata") or {})
    template_labels = {**(template_meta.get("labels") or {}), TEMPLATE_HASH_LABEL: digest}
    selector = dict(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), TEMPLATE_HASH_LABEL: digest}
    meta = facts.meta(deployment)
    desired = int(spec.get("replicas", 1))
    surge, _ = bounds(deployment)
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta.get('name', '')}-{digest}",
            "labels": template_labels,
            "annotations": {
                REVISION: str(revision),
                DESIRED: str(desired),
                MAX_REPLICAS: str(desired + surge),
            },
            "ownerReferences": [facts.controller_ref(deployment)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": int(spec.get("minReadySeconds") or 0),
            "selector": selector,
            "template": {**template, "metadata": {**template_meta, "labels": template_labels}},
        },
    }


def _scale(deployment: Mapping[str, Any], rs: Mapping[str, Any], *, replicas: int) -> UpdateObject:
    old = _spec_replicas(rs)
    meta = dict(facts.meta(rs))
    spec = deployment.get("spec") or {}
    desired = int(spec.get("replicas", 1))
    surge, _ = bounds(deployment)
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        DESIRED: str(desired),
        MAX_REPLICAS: str(desired + surge),
    }
    body = {**rs, "metadata": meta, "spec": {**(rs.get("spec") or {}), "replicas": replicas}}
    direction = "up" if replicas > old else "down"
    message = f"Scaled {direction} replica set {meta.get('name')} from {old} to {replicas}"
    event = EventNote(deployment, "ScalingReplicaSet", message, component=COMPONENT)
    return UpdateObject(_rs_key(rs), str(meta.get("resourceVersion", "")), body, event)


def _rolling(
    deployment: Mapping[str, Any], new: Mapping[str, Any], *, old: Sequence[Mapping[str, Any]]
) -> list[Action]:
    desired = int((deployment.get("spec") or {}).get("replicas", 1))
    surge, unavailable = bounds(deployment)
    everything = [new, *old]
    total = sum(_spec_replicas(rs) for rs in everything)
    current = _spec_replicas(new)
    if current > desired:
        return [_scale(deployment, new, replicas=desired)]
    if current < desired:
        room = desired + surge - total
        if room > 0:
            return [_scale(deployment, new, replicas=min(desired, current + room))]
    min_available = desired - unavailable
    new_unavailable = current - _status(new, "availableReplicas")
    max_down = total - min_available - new_unavailable
    actions: list[Action] = []
    remaining_old: list[tuple[Mapping[str, Any], int]] = []
    for rs in sorted(old, key=_revision):  # unhealthy replicas of old sets go first
        replicas = _spec_replicas(rs)
        unhealthy = replicas - _status(rs, "availableReplicas")
        cut = min(max(0, unhealthy), max(0, max_down))
        if cut:
            max_down -= cut
            replicas -= cut
        remaining_old.append((rs, replicas))
    available = sum(_status(rs, "availableReplicas") for rs in everything)
    budget = max(0, available - min_available)
    for rs, replicas in remaining_old:
        cut = min(replicas, budget)
        budget -= cut
        if replicas - cut != _spec_replicas(rs):
            actions.append(_scale(deployment, rs, replicas=replicas - cut))
    return actions


def _recreate(
    deployment: Mapping[str, Any], new: Mapping[str, Any], *, old: Sequence[Mapping[str, Any]]
) -> list[Action]:
    shrinking = [_scale(deployment, rs, replicas=0) for rs in old if _spec_replicas(rs) > 0]
    if shrinking:
        return list(shrinking)
    if any(_status(rs, "replicas") for rs in old):
        return []  # old Pods still running: wait for them to go
    desired = int((deployment.get("spec") or {}).get("replicas", 1))
    return [] if _spec_replicas(new) == desired else [_scale(deployment, new, replicas=desired)]


def plan_deployment(
    deployment: Mapping[str, Any], replicasets: Sequence[Mapping[str, Any]], *, now: str
) -> list[Action]:
    """The next actions for `deployment`, given the ReplicaSets it controls.

    Creates the ReplicaSet of the current template when it is missing (one revision past
    the newest), scales the new one up and the old ones down (one step per call), deletes
    empty old ReplicaSets beyond `revisionHistoryLimit`, and keeps the status and the
    revision annotation current. A Deployment being deleted or paused is left alone.
    """
    spec = deployment.get("spec") or {}
    if facts.is_deleting(deployment):
        return []
    wanted = comparable_template(dict(spec.get("template") or {}))
    new = next(
        (
            rs
            for rs in sorted(replicasets, key=_revision, reverse=True)
            if comparable_template((rs.get("spec") or {}).get("template") or {}) == wanted
        ),
        None,
    )
    old = [rs for rs in replicasets if rs is not new]
    newest = max((_revision(rs) for rs in replicasets), default=0)
    actions: list[Action] = []
    if new is None:
        desired = int(spec.get("replicas", 1))
        surge, _ = bounds(deployment)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            initial = 0 if any(_spec_replicas(rs) for rs in old) else desired
        else:
            room = desired + surge - sum(_spec_replicas(rs) for rs in old)
            initial = max(0, min(desired, room))
        body = new_replicaset(deployment, replicas=initial, revision=newest + 1)
        name = body["metadata"]["name"]
        message = f"Scaled up replica set {name} from 0 to {initial}"
        event = EventNote(deployment, "ScalingReplicaSet", message, component=COMPONENT)
        namespace = str(facts.meta(deployment).get("namespace", ""))
        return [CreateObject(body, namespace, event)]
    if _revision(new) < newest:  # an older template is back (rollout undo): next revision
        meta = {**facts.meta(new), "annotations": {
            **(facts.meta(new).get("annotations") or {}), REVISION: str(newest + 1)}}  # fmt: skip
        body = {**new, "metadata": meta}
        return [UpdateObject(_rs_key(new), str(meta.get("resourceVersion", "")), body)]
    if not spec.get("paused"):
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            actions.extend(_recreate(deployment, new, old=old))
        else:
            actions.extend(_rolling(deployment, new, old=old))
    actions.extend(_history_cleanup(deployment, old))
    revision = str(_revision(new))
    annotations = facts.meta(deployment).get("annotations") or {}
    if annotations.get(REVISION) != revision:
        meta = {**facts.meta(deployment), "annotations": {**annotations, REVISION: revision}}
        rv = str(meta.get("resourceVersion", ""))
        body = {**deployment, "metadata": meta}
        actions.append(UpdateObject(_key("apps/deployments", deployment), rv, body))
    status = deployment_status(deployment, new, replicasets=[new, *old], now=now)
    if not same_status(status, deployment.get("status") or {}):
        actions.append(SetStatus(_key("apps/deployments", deployment), status))
    return actions


def _history_cleanup(
    deployment: Mapping[str, Any], old: Sequence[Mapping[str, Any]]
) -> list[Action]:
    limit = int((deployment.get("spec") or {}).get("revisionHistoryLimit", 10))
    empty = [rs for rs in old if not _spec_replicas(rs) and not _status(rs, "replicas")]
    empty.sort(key=_revision)
    return [DeleteObject(_rs_key(rs)) for rs in empty[: max(0, len(empty) - limit)]]
