"""Admission of built-in kinds: upstream defaults for the workload kinds, and unknown
fields found with the vendored upstream schema (dropped, or 400 under fieldValidation
Strict, as the real server's strict decoding does). Values are not type-checked."""

from __future__ import annotations

import copy
import json
from typing import Any

from engine.apiserver.controllers.pod_facts import selector_matches
from engine.apiserver.schema import builtin
from engine.apiserver.schema.pruning import Path, prune_unknown
from engine.apiserver.schema.validation import field_path
from engine.apiserver.store.errors import ApiError, invalid
from engine.apiserver.store.resource_types import ResourceType

_UNCHECKED_KINDS = frozenset({"Event"})
_SELECTING = frozenset(
    {("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet")}
)  # two shapes share one storage: left as sent


def admit_builtin(
    rtype: ResourceType, obj: dict[str, Any], *, field_validation: str
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """(object to store, Warning values) for a built-in kind; ApiError 400 under Strict
    when `obj` has fields its upstream schema does not know."""
    if rtype.kind in _UNCHECKED_KINDS:
        return obj, ()
    name = builtin.definition_name(rtype.group, rtype.version, rtype.kind)
    if name is None:
        return obj, ()
    result = copy.deepcopy(obj)
    unknown: list[Path] = []
    prune_unknown(result, builtin.resolved(name), (), unknown, root=True)
    found = [f'unknown field "{field_path(path)}"' for path in unknown]
    if found and field_validation == "Strict":
        raise ApiError(
            400,
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
            f"strict decoding error: {', '.join(found)}",
        )
    result = with_defaults(rtype, result)
    _check_selector(rtype, result)
    return result, tuple(found) if field_validation == "Warn" else ()


def _check_selector(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """422 as upstream when a workload's selector is missing or does not select its own
    template's labels (its controller would otherwise create Pods it never counts)."""
    if (rtype.group, rtype.kind) not in _SELECTING:
        return
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    selector = spec.get("selector")
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    labels = ((template or {}).get("metadata") or {}).get("labels") or {}
    name = str(obj["metadata"].get("name", ""))
    if not selector:
        cause = {"reason": "FieldValueRequired", "field": "spec.selector",
                 "message": "Required value"}  # fmt: skip
        raise invalid(rtype.kind, name, group=rtype.group, causes=[cause])
    if not selector_matches(selector, labels):
        message = (
            f"Invalid value: {json.dumps(labels, separators=(',', ':'))}: "
            "`selector` does not match template `labels`"
        )
        cause = {"reason": "FieldValueInvalid", "field": "spec.template.metadata.labels",
                 "message": message}  # fmt: skip
        raise invalid(rtype.kind, name, group=rtype.group, causes=[cause])


def with_defaults(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with the upstream defaults the controllers rely on (changed in place)."""
    kind = (rtype.group, rtype.kind)
    if kind == ("", "Namespace"):
        obj.setdefault("spec", {})
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return obj
    if kind in (("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet")):
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("minReadySeconds", 0)
    if kind == ("apps", "Deployment"):
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
    if kind == ("apps", "StatefulSet"):
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    if kind == ("batch", "Job"):
        _job_defaults(obj, spec)
    if kind == ("", "Namespace") and "finalizers" not in spec:
        spec["finalizers"] = ["kubernetes"]
    if kind == ("", "Pod"):
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
    return obj


def _job_defaults(obj: dict[str, Any], spec: dict[str, Any]) -> None:
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if spec.get("manualSelector"):
        return
    uid = str(obj["metadata"].get("uid", ""))
    labels = {"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid}
    spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    template = spec.setdefault("template", {})
    meta = template.setdefault("metadata", {})
    name = str(obj["metadata"].get("name", ""))
    meta["labels"] = {
        **(meta.get("labels") or {}),
        **labels,
        "batch.kubernetes.io/job-name": name,
        "job-name": name,
    }
