"""Facts about Pods and owners that every workload controller reads: controller
references, label-selector matching, whether a Pod is active, ready or finished."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TERMINAL_PHASES = ("Succeeded", "Failed")


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """`obj.metadata`, or an empty mapping."""
    found = obj.get("metadata")
    return found if isinstance(found, Mapping) else {}


def labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """`obj.metadata.labels`, or an empty mapping."""
    found = meta(obj).get("labels")
    return found if isinstance(found, Mapping) else {}


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the ownerReference with `controller: true`, if any."""
    for ref in meta(obj).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller"):
            return str(ref.get("uid", ""))
    return None


def controller_ref(owner: Mapping[str, Any]) -> dict[str, Any]:
    """The ownerReference a controller puts on what it creates or adopts."""
    owner_meta = meta(owner)
    return {
        "apiVersion": str(owner.get("apiVersion", "")),
        "kind": str(owner.get("kind", "")),
        "name": str(owner_meta.get("name", "")),
        "uid": str(owner_meta.get("uid", "")),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def selector_matches(selector: Any, found: Mapping[str, str]) -> bool:
    """Whether labels `found` satisfy a LabelSelector object; an empty or missing selector
    matches nothing (as for workload controllers)."""
    if not isinstance(selector, Mapping):
        return False
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or ()
    if not match_labels and not expressions:
        return False
    if any(found.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in expressions:
        key = expression.get("key", "")
        values = expression.get("values") or ()
        match expression.get("operator"):
            case "In":
                ok = key in found and found[key] in values
            case "NotIn":
                ok = key not in found or found[key] not in values
            case "Exists":
                ok = key in found
            case "DoesNotExist":
                ok = key not in found
            case _:
                ok = False
        if not ok:
            return False
    return True


def is_deleting(obj: Mapping[str, Any]) -> bool:
    """Whether `deletionTimestamp` is set."""
    return bool(meta(obj).get("deletionTimestamp"))


def phase(pod: Mapping[str, Any]) -> str:
    """`status.phase`, "Pending" when unset."""
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_active(pod: Mapping[str, Any]) -> bool:
    """Not being deleted and not finished: it counts toward a controller's replicas."""
    return not is_deleting(pod) and phase(pod) not in TERMINAL_PHASES


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Whether the Pod's Ready condition is True."""
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def condition_of(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The status condition of type `kind`, if any."""
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition.get("type") == kind:
            found: Mapping[str, Any] = condition
            return found
    return None


def set_condition(
    conditions: list[dict[str, Any]], new: dict[str, Any], *, now: str
) -> list[dict[str, Any]]:
    """`conditions` with `new` in place of its type's entry; lastTransitionTime kept while
    the status is unchanged, lastUpdateTime kept while nothing else changed either."""
    old = next((c for c in conditions if c.get("type") == new["type"]), None)
    entry = dict(new)
    same_status = old is not None and old.get("status") == new["status"]
    kept = old.get("lastTransitionTime", now) if old is not None else now
    entry["lastTransitionTime"] = kept if same_status else now
    unchanged = (
        old is not None
        and same_status
        and old.get("reason") == new.get("reason")
        and old.get("message") == new.get("message")
    )
    if "lastUpdateTime" in new or (old is not None and "lastUpdateTime" in old):
        entry["lastUpdateTime"] = old.get("lastUpdateTime", now) if unchanged and old else now
    rest = [c for c in conditions if c.get("type") != new["type"]]
    return [*rest, entry] if old is None else [entry if c is old else c for c in conditions]
