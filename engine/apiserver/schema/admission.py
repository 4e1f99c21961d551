"""Admission of an object about to be stored: name checks, CRD schema validation with
defaults and pruning, fieldValidation handling, and the server-owned CRD status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.apiserver.admission import configurations as webhook_configurations
from engine.apiserver.authz.names import RBAC_GROUP, path_segment_problem
from engine.apiserver.schema import custom as schema
from engine.apiserver.schema.builtin_admission import admit_builtin
from engine.apiserver.store.errors import ApiError, invalid
from engine.apiserver.store.resource_types import ResourceType, types_from_crd


@dataclass(frozen=True)
class Admitted:
    """The object to store and any `Warning` header values to send."""

    obj: dict[str, Any]
    warnings: tuple[str, ...]


def admit(rtype: ResourceType, obj: dict[str, Any], *, field_validation: str) -> Admitted:
    """Validate `obj` of `rtype`; raise ApiError 422 (invalid) or 400 (Strict, unknown field).

    Custom resources get defaults applied and unknown fields pruned per their schema.
    """
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    problem = (
        path_segment_problem(name) if rtype.group == RBAC_GROUP else schema.validate_name(name)
    )
    if problem is not None:
        cause = {"reason": "FieldValueInvalid", "field": "metadata.name",
                 "message": f'Invalid value: "{name}": {problem}'}  # fmt: skip
        raise invalid(rtype.kind, name, group=rtype.group, causes=[cause])
    warnings: tuple[str, ...] = ()
    if rtype.custom and rtype.schema is not None:
        result = schema.admit(obj, rtype.schema)
        if result.causes:
            causes = [
                {"reason": c.reason, "field": c.field, "message": c.message} for c in result.causes
            ]
            raise invalid(rtype.kind, name, group=rtype.group, causes=causes)
        unknown = [f'unknown field "{path}"' for path in result.unknown_fields]
        if unknown and field_validation == "Strict":
            raise ApiError(400, f"strict decoding error: {', '.join(unknown)}")
        if field_validation == "Warn":
            warnings = tuple(unknown)
        obj = result.obj
    elif not rtype.custom:
        obj, warnings = admit_builtin(rtype, obj, field_validation=field_validation)
    if rtype.kind == "CustomResourceDefinition" and rtype.group == "apiextensions.k8s.io":
        obj = _admit_crd(obj)
    if rtype.group == webhook_configurations.GROUP:
        obj = _admit_webhook_configuration(rtype, obj)
    return Admitted(obj=obj, warnings=warnings)


def _admit_webhook_configuration(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    mutating = rtype.kind == "MutatingWebhookConfiguration"
    obj = webhook_configurations.defaulted_configuration(obj, mutating=mutating)
    problems = webhook_configurations.configuration_problems(obj)
    if problems:
        name = str(obj["metadata"].get("name", ""))
        causes = [_cause("FieldValueInvalid", field, message) for field, message in problems]
        raise invalid(rtype.kind, name, group=rtype.group, causes=causes)
    return obj


def _admit_crd(crd: dict[str, Any]) -> dict[str, Any]:
    name = str(crd["metadata"].get("name", ""))
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    causes: list[dict[str, str]] = []

    def require(value: Any, field: str) -> None:
        if not value:
            causes.append({"reason": "FieldValueRequired", "field": field,
                           "message": "Required value"})  # fmt: skip

    require(spec.get("group"), "spec.group")
    require(names.get("plural"), "spec.names.plural")
    require(names.get("kind"), "spec.names.kind")
    versions = spec.get("versions") or []
    require(versions, "spec.versions")
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        supported = 'Unsupported value: supported values: "Cluster", "Namespaced"'
        causes.append(_cause("FieldValueNotSupported", "spec.scope", supported))
    expected = f"{names.get('plural')}.{spec.get('group')}"
    if names.get("plural") and spec.get("group") and name != expected:
        wrong = f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'
        causes.append(_cause("FieldValueInvalid", "metadata.name", wrong))
    if versions and sum(1 for v in versions if v.get("storage")) != 1:
        storage = "must have exactly one version marked as storage version"
        causes.append(_cause("FieldValueInvalid", "spec.versions", storage))
    causes.extend(_conversion_causes(spec.get("conversion")))
    for index, version in enumerate(versions):
        v_schema = (version.get("schema") or {}).get("openAPIV3Schema")
        field = f"spec.versions[{index}].schema.openAPIV3Schema"
        if v_schema is None:
            causes.append({"reason": "FieldValueRequired", "field": field,
                           "message": "Required value: schemas are required"})  # fmt: skip
            continue
        for problem in schema.structural_problems(v_schema):
            causes.append({"reason": "FieldValueInvalid", "field": field, "message": problem})
    if causes:
        raise invalid("CustomResourceDefinition", name, group="apiextensions.k8s.io", causes=causes)
    return crd


def _conversion_causes(conversion: Any) -> list[dict[str, str]]:
    if not isinstance(conversion, Mapping):
        return []
    strategy = conversion.get("strategy", "None")
    if strategy not in ("None", "Webhook"):
        supported = f'Unsupported value: "{strategy}": supported values: "None", "Webhook"'
        return [_cause("FieldValueNotSupported", "spec.conversion.strategy", supported)]
    webhook = conversion.get("webhook") or {}
    if strategy == "None":
        if webhook:
            forbidden = "Forbidden: should not be set when strategy is not set to Webhook"
            return [_cause("FieldValueForbidden", "spec.conversion.webhook", forbidden)]
        return []
    causes = []
    if not webhook.get("clientConfig"):
        required = "Required value: required when strategy is set to Webhook"
        causes.append(
            _cause("FieldValueRequired", "spec.conversion.webhook.clientConfig", required)
        )
    if not webhook.get("conversionReviewVersions"):
        required = "Required value: must include at least one of v1, v1beta1"
        causes.append(
            _cause(
                "FieldValueRequired", "spec.conversion.webhook.conversionReviewVersions", required
            )
        )
    return causes


def _cause(reason: str, field: str, message: str) -> dict[str, str]:
    return {"reason": reason, "field": field, "message": message}


def crd_status(crd: Mapping[str, Any], *, now: str) -> dict[str, Any]:
    """The status the server keeps on a CRD: accepted names, Established, stored versions."""
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    old = crd.get("status") or {}
    stored = list(old.get("storedVersions") or ())
    for rtype in types_from_crd(crd)[:1]:
        if rtype.version not in stored:
            stored.append(rtype.version)
    conditions = [
        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
         "message": "no conflicts found", "lastTransitionTime": now},
        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
         "message": "the initial names have been accepted", "lastTransitionTime": now},
    ]  # fmt: skip
    previous = {c.get("type"): c for c in old.get("conditions") or ()}
    for condition in conditions:
        kept = previous.get(condition["type"])
        if kept and kept.get("status") == "True":
            condition["lastTransitionTime"] = kept.get("lastTransitionTime", now)
    return {"acceptedNames": names, "conditions": conditions, "storedVersions": stored}
