"""An operator with webhooks, for the webhook tests: a `Quota` (webhooks.test) served as
v1 (storage, the conversion hub) and v1alpha1, validated, defaulted and converted.

- validate: `spec.minReplicas` must not exceed `spec.maxReplicas` (a cross-field rule a
  schema cannot hold); refused with a message naming it.
- mutate: `spec.tier` defaults to "large" when `maxReplicas` is above 10, else "small"
  (a default that depends on another field).
- v1alpha1 holds the range as one string, `spec.range: "MIN-MAX"`, and has no
  `spec.note`: converting v1 → v1alpha1 keeps the note in an annotation.
- `spec.token` is a secret field (never journaled).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from engine import (
    AdmissionRequest,
    Context,
    CustomResource,
    Operator,
    Rejected,
    ServedVersion,
)

NOTE_ANNOTATION = "webhooks.test/note"

_STATUS = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
V1_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["minReplicas", "maxReplicas"],
            "properties": {
                "minReplicas": {"type": "integer", "minimum": 0},
                "maxReplicas": {"type": "integer", "minimum": 0},
                "tier": {"type": "string"},
                "note": {"type": "string"},
                "token": {"type": "string"},
            },
        },
        "status": _STATUS,
    },
}
V1ALPHA1_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["range"],
            "properties": {
                "range": {"type": "string", "pattern": "^[0-9]+-[0-9]+$"},
                "tier": {"type": "string"},
                "token": {"type": "string"},
            },
        },
        "status": _STATUS,
    },
}


def v1alpha1_to_v1(obj: Mapping[str, Any]) -> dict[str, Any]:
    converted = copy.deepcopy(dict(obj))
    spec = dict(converted.get("spec") or {})
    low, _, high = str(spec.pop("range", "0-0")).partition("-")
    spec["minReplicas"], spec["maxReplicas"] = int(low), int(high)
    metadata = dict(converted.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    if NOTE_ANNOTATION in annotations:
        spec["note"] = annotations.pop(NOTE_ANNOTATION)
        if annotations:
            metadata["annotations"] = annotations
        else:
            metadata.pop("annotations", None)
    converted["spec"], converted["metadata"] = spec, metadata
    return converted


def v1_to_v1alpha1(obj: Mapping[str, Any]) -> dict[str, Any]:
    converted = copy.deepcopy(dict(obj))
    spec = dict(converted.get("spec") or {})
    spec["range"] = f"{spec.pop('minReplicas', 0)}-{spec.pop('maxReplicas', 0)}"
    metadata = dict(converted.get("metadata") or {})
    if "note" in spec:
        metadata["annotations"] = {
            **dict(metadata.get("annotations") or {}),
            NOTE_ANNOTATION: spec.pop("note"),
        }
    converted["spec"], converted["metadata"] = spec, metadata
    return converted


QUOTA = CustomResource(
    group="webhooks.test",
    version="v1",
    kind="Quota",
    plural="quotas",
    schema=V1_SCHEMA,
    served_versions=(
        ServedVersion(
            name="v1alpha1",
            schema=V1ALPHA1_SCHEMA,
            to_hub=v1alpha1_to_v1,
            from_hub=v1_to_v1alpha1,
        ),
    ),
    printer_columns=({"name": "State", "type": "string", "jsonPath": ".status.phase"},),
)


def validate(request: AdmissionRequest) -> None:
    spec = (request.object or {}).get("spec") or {}
    low, high = spec.get("minReplicas", 0), spec.get("maxReplicas", 0)
    if low > high:
        raise Rejected(
            f"spec.minReplicas ({low}) must not exceed spec.maxReplicas ({high}) [rule quota-range]"
        )


async def mutate(request: AdmissionRequest) -> dict[str, Any] | None:
    obj = dict(request.object or {})
    spec = dict(obj.get("spec") or {})
    if "tier" in spec:
        return None
    spec["tier"] = "large" if spec.get("maxReplicas", 0) > 10 else "small"
    obj["spec"] = spec
    return obj


async def provision(ctx: Context) -> None:
    return None


OPERATOR = Operator(
    resource=QUOTA,
    provision=provision,
    validate=validate,
    mutate=mutate,
    secret_fields=("spec.token",),
)
