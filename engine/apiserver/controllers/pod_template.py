"""Pods from a controller's pod template, and the template hash a Deployment labels its
ReplicaSets with (`pod-template-hash`)."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from engine.apiserver.controllers.pod_facts import controller_ref

TEMPLATE_HASH_LABEL = "pod-template-hash"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of upstream's SafeEncodeString


def _without_nulls(value: Any) -> Any:
    """`value` without nulls, empty objects and empty lists (Go's zero values, which
    kubectl writes back as `null` or `{}`)."""
    if isinstance(value, Mapping):
        kept = {k: _without_nulls(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def comparable_template(template: Mapping[str, Any]) -> dict[str, Any]:
    """`template` without zero values and without the pod-template-hash label, so that a
    Deployment's template and its ReplicaSet's compare equal (as upstream's EqualIgnoreHash;
    `kubectl rollout undo` copies a ReplicaSet's template back)."""
    found: dict[str, Any] = _without_nulls(template)
    meta = dict(found.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != TEMPLATE_HASH_LABEL}
    if labels:
        meta["labels"] = labels
    else:
        meta.pop("labels", None)
    if meta:
        found["metadata"] = meta
    else:
        found.pop("metadata", None)
    return found


def template_hash(template: Mapping[str, Any], *, collisions: int = 0) -> str:
    """A stable 10-character hash of a pod template (as `comparable_template`) and a
    collision count."""
    text = json.dumps(
        [comparable_template(template), collisions], sort_keys=True, separators=(",", ":")
    )
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    chars = []
    for _ in range(10):
        digest, index = divmod(digest, len(_SAFE_ALPHABET))
        chars.append(_SAFE_ALPHABET[index])
    return "".join(chars)


def pod_from_template(
    template: Mapping[str, Any],
    *,
    owner: Mapping[str, Any],
    name: str | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Pod body from `template`, controlled by `owner`; named `name`, or generated as
    `<owner name>-xxxxx` when `name` is None."""
    template_meta = dict(template.get("metadata") or {})
    owner_name = str((owner.get("metadata") or {}).get("name", ""))
    metadata: dict[str, Any] = {
        "labels": {**(template_meta.get("labels") or {}), **(extra_labels or {})},
        "ownerReferences": [controller_ref(owner)],
    }
    if template_meta.get("annotations"):
        metadata["annotations"] = dict(template_meta["annotations"])
    if name is None:
        metadata["generateName"] = f"{owner_name}-"
    else:
        metadata["name"] = name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": copy.deepcopy(dict(template.get("spec") or {})),
    }
