"""StatefulSet planning, pure: ordinal Pods `<name>-0 … <name>-(n-1)`, created in order
(each once the one before is Running and Ready, with OrderedReady) and removed from the
highest ordinal down; status counts."""

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
)
from engine.apiserver.controllers.pod_template import pod_from_template

COMPONENT = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def ordinal(set_name: str, pod: Mapping[str, Any]) -> int | None:
    """The ordinal of a Pod named `<set_name>-<n>`, else None."""
    name = str(facts.meta(pod).get("name", ""))
    prefix, _, number = name.rpartition("-")
    return int(number) if prefix == set_name and number.isdigit() else None


def plan_statefulset(
    statefulset: Mapping[str, Any], controlled: Sequence[Mapping[str, Any]]
) -> list[Action]:
    """The next actions for `statefulset`, given the Pods it controls."""
    meta = facts.meta(statefulset)
    name = str(meta.get("name", ""))
    namespace = str(meta.get("namespace", ""))
    spec = statefulset.get("spec") or {}
    desired = int(spec.get("replicas", 1))
    ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
    by_ordinal: dict[int, Mapping[str, Any]] = {}
    for pod in controlled:
        index = ordinal(name, pod)
        if index is not None:
            by_ordinal[index] = pod
    actions: list[Action] = []
    if not facts.is_deleting(statefulset):
        actions.extend(
            _create_or_replace(statefulset, by_ordinal, desired=desired, ordered=ordered)
        )
        extra = sorted((i for i in by_ordinal if i >= desired), reverse=True)
        for index in extra[:1] if ordered else extra:
            pod = by_ordinal[index]
            if facts.is_deleting(pod):
                break
            message = f"delete Pod {facts.meta(pod).get('name')} in StatefulSet {name} successful"
            event = EventNote(statefulset, "SuccessfulDelete", message, component=COMPONENT)
            actions.append(DeleteObject(f"/pods/{namespace}/{name}-{index}", event=event))
    active = [p for p in by_ordinal.values() if facts.is_active(p)]
    ready = sum(1 for p in active if facts.is_ready(p))
    status = {
        "observedGeneration": int(meta.get("generation") or 1),
        "replicas": len(active),
        "readyReplicas": ready,
        "currentReplicas": len(active),
        "updatedReplicas": len(active),
        "availableReplicas": ready,
        "collisionCount": 0,
    }
    if status != (statefulset.get("status") or {}):
        actions.append(SetStatus(f"apps/statefulsets/{namespace}/{name}", status))
    return actions


def _create_or_replace(
    statefulset: Mapping[str, Any],
    by_ordinal: Mapping[int, Mapping[str, Any]],
    *,
    desired: int,
    ordered: bool,
) -> list[Action]:
    meta = facts.meta(statefulset)
    name = str(meta.get("name", ""))
    namespace = str(meta.get("namespace", ""))
    template = (statefulset.get("spec") or {}).get("template") or {}
    actions: list[Action] = []
    for index in range(desired):
        pod = by_ordinal.get(index)
        if pod is not None and facts.phase(pod) == "Failed" and not facts.is_deleting(pod):
            actions.append(DeleteObject(f"/pods/{namespace}/{name}-{index}"))  # recreated next
            if ordered:
                return actions
            continue
        if pod is None:
            pod_name = f"{name}-{index}"
            labels = {POD_NAME_LABEL: pod_name, POD_INDEX_LABEL: str(index)}
            body = pod_from_template(
                template, owner=statefulset, name=pod_name, extra_labels=labels
            )
            body["spec"].setdefault("hostname", pod_name)
            message = f"create Pod {pod_name} in StatefulSet {name} successful"
            event = EventNote(statefulset, "SuccessfulCreate", message, component=COMPONENT)
            actions.append(CreateObject(body, namespace, event))
            if ordered:
                return actions
            continue
        if ordered and not (facts.phase(pod) == "Running" and facts.is_ready(pod)):
            return actions  # wait for this one before the next
    return actions
