"""AdmissionReview v1: the request kube-apiserver sends for one webhook, and the checks
it makes on the answer (kind, uid, allowed, patch and patchType)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.apiserver.admission.client import CallFailed
from engine.apiserver.authn.user_info import UserInfo
from engine.apiserver.store.resource_types import ResourceType

API_VERSION = "admission.k8s.io/v1"
_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


@dataclass(frozen=True)
class AdmissionAttributes:
    """What is being admitted: operation, the type and subresource addressed, where, by whom."""

    operation: str
    rtype: ResourceType
    subresource: str
    namespace: str
    name: str
    user: UserInfo | None
    dry_run: bool
    options: Mapping[str, Any] = field(default_factory=dict)
    kind: tuple[str, str, str] | None = None  # (group, version, kind) of the object when it
    # is not the type's own (a Scale through the scale subresource)


def _kind(attrs: AdmissionAttributes, rtype: ResourceType) -> dict[str, str]:
    group, version, kind = attrs.kind or (rtype.group, rtype.version, rtype.kind)
    return {"group": group, "version": version, "kind": kind}


def _resource(rtype: ResourceType) -> dict[str, str]:
    return {"group": rtype.group, "version": rtype.version, "resource": rtype.plural}


def _user(user: UserInfo | None) -> dict[str, Any]:
    if user is None:
        return {"username": "system:apiserver", "groups": ["system:masters"]}
    return user.as_review()


def review_request(
    attrs: AdmissionAttributes,
    called_as: ResourceType,
    obj: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The AdmissionReview to POST; `called_as` is the type the webhook's rules matched
    (the request's own, or an equivalent version of it)."""
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": _kind(attrs, called_as),
        "resource": _resource(called_as),
        "requestKind": _kind(attrs, attrs.rtype),
        "requestResource": _resource(attrs.rtype),
        "name": attrs.name,
        "operation": attrs.operation,
        "userInfo": _user(attrs.user),
        "object": obj,
        "oldObject": old,
        "dryRun": attrs.dry_run,
        "options": {
            "apiVersion": "meta.k8s.io/v1",
            "kind": _OPTIONS_KIND[attrs.operation],
            **attrs.options,
        },
    }
    if attrs.subresource:
        request["subResource"] = attrs.subresource
        request["requestSubResource"] = attrs.subresource
    if attrs.rtype.namespaced:
        request["namespace"] = attrs.namespace
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "request": request}


@dataclass(frozen=True)
class ReviewAnswer:
    """The verified response: allowed, the Status of a refusal, a JSON patch, warnings."""

    allowed: bool
    status: Mapping[str, Any]
    patch: str
    patch_type: str
    warnings: tuple[str, ...]


def verified_answer(sent: Mapping[str, Any], answer: Mapping[str, Any]) -> ReviewAnswer:
    """The answer's response, checked as upstream checks it; CallFailed when malformed."""
    if answer.get("apiVersion") != API_VERSION or answer.get("kind") != "AdmissionReview":
        raise CallFailed(
            "received invalid webhook response: expected webhook response of "
            f"{API_VERSION}, Kind=AdmissionReview, got {answer.get('apiVersion', '')}, "
            f"Kind={answer.get('kind', '')}"
        )
    response = answer.get("response")
    if not isinstance(response, Mapping):
        raise CallFailed("received invalid webhook response: webhook response was absent")
    uid = str(sent["request"]["uid"])
    if str(response.get("uid", "")) != uid:
        raise CallFailed(
            f'received invalid webhook response: expected response.uid="{uid}", '
            f'got "{response.get("uid", "")}"'
        )
    patch = str(response.get("patch") or "")
    patch_type = str(response.get("patchType") or "")
    if patch and not patch_type:
        raise CallFailed(
            "received invalid webhook response: webhook returned response.patch but not "
            "response.patchType"
        )
    if patch_type and not patch:
        raise CallFailed(
            "received invalid webhook response: webhook returned response.patchType but not "
            "response.patch"
        )
    status = response.get("status")
    return ReviewAnswer(
        allowed=response.get("allowed") is True,
        status=status if isinstance(status, Mapping) else {},
        patch=patch,
        patch_type=patch_type,
        warnings=tuple(str(w) for w in response.get("warnings") or ()),
    )
