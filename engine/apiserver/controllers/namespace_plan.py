"""Namespace deletion planning, pure: a Terminating namespace has its contents deleted;
once nothing is left its `kubernetes` finalizer (spec.finalizers) is removed, and it goes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.apiserver.controllers import pod_facts as facts
from engine.apiserver.controllers.actions import Action, DeleteObject, UpdateObject

FINALIZER = "kubernetes"


def plan_namespace(
    namespace: Mapping[str, Any], contents: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[Action]:
    """The next actions for `namespace`, given every (key, object) inside it."""
    if not facts.is_deleting(namespace):
        return []
    if contents:
        return [DeleteObject(key) for key, obj in contents if not facts.is_deleting(obj)]
    spec = dict(namespace.get("spec") or {})
    finalizers = [f for f in spec.get("finalizers") or () if f != FINALIZER]
    if finalizers == list(spec.get("finalizers") or ()):
        return []
    meta = facts.meta(namespace)
    body = {**namespace, "spec": {**spec, "finalizers": finalizers}}
    return [
        UpdateObject(f"/namespaces//{meta.get('name')}", str(meta.get("resourceVersion")), body)
    ]
