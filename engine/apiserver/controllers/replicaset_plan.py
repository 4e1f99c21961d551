"""ReplicaSet planning, pure: from a ReplicaSet, the Pods it controls and the orphan Pods
of its namespace, what to do next (create, delete, adopt, release, status)."""

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
from engine.apiserver.controllers.pod_template import pod_from_template

COMPONENT = "replicaset-controller"


def _key(pod: Mapping[str, Any]) -> str:
    meta = facts.meta(pod)
    return f"/pods/{meta.get('namespace', '')}/{meta.get('name', '')}"


def _with_refs(pod: Mapping[str, Any], refs: list[Any]) -> dict[str, Any]:
    meta = dict(facts.meta(pod))
    if refs:
        meta["ownerReferences"] = refs
    else:
        meta.pop("ownerReferences", None)
    return {**pod, "metadata": meta}


def _deletion_rank(pod: Mapping[str, Any]) -> tuple[int, int, int, str]:
    """Lower goes first: unscheduled, then pending, then not ready; newest first."""
    scheduled = 1 if (pod.get("spec") or {}).get("nodeName") else 0
    running = 1 if facts.phase(pod) == "Running" else 0
    ready = 1 if facts.is_ready(pod) else 0
    created = str(facts.meta(pod).get("creationTimestamp", ""))
    inverted = "".join(chr(0x10FFFF - ord(c)) for c in created)
    return (scheduled, running, ready, inverted)


def replica_status(rs: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The status a ReplicaSet shows for its active Pods."""
    active = [p for p in pods if facts.is_active(p)]
    ready = sum(1 for p in active if facts.is_ready(p))
    template_labels = ((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}
    wanted = template_labels.get("labels") or {}
    labelled = sum(1 for p in active if all(facts.labels(p).get(k) == v for k, v in wanted.items()))
    status: dict[str, Any] = {
        "replicas": len(active),
        "fullyLabeledReplicas": labelled,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": int(facts.meta(rs).get("generation") or 1),
    }
    for condition in (rs.get("status") or {}).get("conditions") or ():
        status.setdefault("conditions", []).append(condition)
    return status


def plan_replicaset(
    rs: Mapping[str, Any],
    controlled: Sequence[Mapping[str, Any]],
    *,
    orphans: Sequence[Mapping[str, Any]],
) -> list[Action]:
    """The next actions for `rs`, given the Pods it controls and its namespace's orphans.

    Controlled Pods that no longer match the selector are released (the controller
    reference removed); matching orphans are adopted. Missing replicas are created from
    the template, extra ones deleted (unscheduled, pending, not ready and newest first).
    A ReplicaSet being deleted gets no new Pods.
    """
    spec = rs.get("spec") or {}
    selector = spec.get("selector")
    uid = str(facts.meta(rs).get("uid", ""))
    actions: list[Action] = []
    owned: list[Mapping[str, Any]] = []
    for pod in controlled:
        if facts.selector_matches(selector, facts.labels(pod)) or facts.is_deleting(pod):
            owned.append(pod)
            continue
        refs = [r for r in facts.meta(pod).get("ownerReferences") or () if r.get("uid") != uid]
        rv = str(facts.meta(pod).get("resourceVersion", ""))
        actions.append(UpdateObject(_key(pod), rv, _with_refs(pod, refs)))
    deleting = facts.is_deleting(rs)
    for pod in orphans:
        if deleting or facts.is_deleting(pod):
            continue
        if facts.selector_matches(selector, facts.labels(pod)):
            refs = [*(facts.meta(pod).get("ownerReferences") or ()), facts.controller_ref(rs)]
            rv = str(facts.meta(pod).get("resourceVersion", ""))
            actions.append(UpdateObject(_key(pod), rv, _with_refs(pod, refs)))
            owned.append(pod)
    active = [p for p in owned if facts.is_active(p)]
    desired = int(spec.get("replicas", 1))
    if not deleting and len(active) < desired:
        template = spec.get("template") or {}
        namespace = str(facts.meta(rs).get("namespace", ""))
        for _ in range(desired - len(active)):
            event = EventNote(rs, "SuccessfulCreate", "Created pod: {name}", component=COMPONENT)
            actions.append(CreateObject(pod_from_template(template, owner=rs), namespace, event))
    elif not deleting and len(active) > desired:
        for pod in sorted(active, key=_deletion_rank)[: len(active) - desired]:
            name = facts.meta(pod).get("name", "")
            event = EventNote(rs, "SuccessfulDelete", f"Deleted pod: {name}", component=COMPONENT)
            actions.append(DeleteObject(_key(pod), event=event))
    status = replica_status(rs, owned)
    if status != (rs.get("status") or {}):
        actions.append(SetStatus(_rs_key(rs), status))
    return actions


def _rs_key(rs: Mapping[str, Any]) -> str:
    meta = facts.meta(rs)
    return f"apps/replicasets/{meta.get('namespace', '')}/{meta.get('name', '')}"
