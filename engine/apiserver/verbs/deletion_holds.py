"""What keeps a deleted object in storage for a while: a bound Pod's grace period (the
kubelet removes it) and a Namespace's `kubernetes` finalizer (removed once it is empty)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.apiserver.store.resource_types import ResourceType


def grace_seconds(rtype: ResourceType, obj: Mapping[str, Any], *, requested: int | None) -> int:
    """The grace period a delete gives `obj`: only a Pod bound to a node gets one (the
    request's, else its spec's terminationGracePeriodSeconds); 0 removes it at once."""
    if rtype.group != "" or rtype.kind != "Pod" or not (obj.get("spec") or {}).get("nodeName"):
        return 0
    if requested is not None:
        return max(0, requested)
    return max(0, int((obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)))


def namespace_held(obj: Mapping[str, Any]) -> bool:
    """A Namespace whose spec.finalizers are not yet empty."""
    return obj.get("kind") == "Namespace" and bool((obj.get("spec") or {}).get("finalizers"))


def marked_terminating(obj: dict[str, Any], *, grace: int) -> dict[str, Any]:
    """`obj` just marked deleting, with its grace period and (a Namespace) phase Terminating."""
    meta = {**obj["metadata"]}
    if grace:
        meta["deletionGracePeriodSeconds"] = grace
    obj = {**obj, "metadata": meta}
    if namespace_held(obj):
        obj["status"] = {**(obj.get("status") or {}), "phase": "Terminating"}
    return obj
