"""Custom resources between their versions: a CRD's `None` strategy changes apiVersion
only; `Webhook` sends a ConversionReview v1 (one per call, every object of a list in
it) and checks the answer as kube-apiserver does (count, uids, apiVersion, kind), keeping
each object's metadata but its labels and annotations."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from engine.apiserver.admission.client import CallFailed
from engine.apiserver.admission.patching import internal_error
from engine.apiserver.store.resource_types import ResourceType
from engine.apiserver.verbs.conversion import convert

if TYPE_CHECKING:
    from engine.apiserver.admission.client import WebhookClient

REVIEW_API_VERSION = "apiextensions.k8s.io/v1"


def uses_webhook(rtype: ResourceType) -> bool:
    """Whether objects of this custom resource convert through a webhook."""
    return bool(rtype.conversion) and (rtype.conversion or {}).get("strategy") == "Webhook"


def needs_conversion(rtype: ResourceType, objs: Sequence[Mapping[str, Any]], version: str) -> bool:
    """Whether any of `objs` is stored under another apiVersion than `version` of rtype."""
    wanted = f"{rtype.group}/{version}"
    return rtype.custom and any(obj.get("apiVersion") != wanted for obj in objs)


async def converted(
    client: WebhookClient | None,
    rtype: ResourceType,
    objs: Sequence[Mapping[str, Any]],
    version: str,
) -> list[dict[str, Any]]:
    """`objs` (of `rtype`'s CRD, any version) as `version` shows them; ApiError 500 when a
    conversion webhook fails or answers wrongly."""
    wanted = f"{rtype.group}/{version}"
    pending = [i for i, obj in enumerate(objs) if obj.get("apiVersion") != wanted]
    result = [obj if isinstance(obj, dict) else dict(obj) for obj in objs]
    if not pending:
        return result
    if not uses_webhook(rtype) or client is None:
        for index in pending:
            result[index] = convert(objs[index], api_version=wanted)
        return result
    answers = await _through_webhook(client, rtype, [objs[i] for i in pending], wanted)
    for index, answer in zip(pending, answers, strict=True):
        result[index] = answer
    return result


def _failed(rtype: ResourceType, wanted: str, reason: str) -> Exception:
    return internal_error(f"conversion webhook for {wanted}, Kind={rtype.kind} failed: {reason}")


async def _through_webhook(
    client: WebhookClient, rtype: ResourceType, objs: Sequence[Mapping[str, Any]], wanted: str
) -> list[dict[str, Any]]:
    webhook = (rtype.conversion or {}).get("webhook") or {}
    versions = webhook.get("conversionReviewVersions") or ()
    if "v1" not in versions:
        raise _failed(rtype, wanted, "webhook does not accept v1 ConversionReview")
    uid = str(uuid.uuid4())
    review = {
        "apiVersion": REVIEW_API_VERSION,
        "kind": "ConversionReview",
        "request": {"uid": uid, "desiredAPIVersion": wanted, "objects": list(objs)},
    }
    try:
        answer = await client.post(webhook.get("clientConfig") or {}, review, seconds=30)
    except CallFailed as failed:
        raise _failed(rtype, wanted, str(failed)) from None
    response = answer.get("response")
    if not isinstance(response, Mapping):
        raise _failed(rtype, wanted, "no response provided")
    if str(response.get("uid", "")) != uid:
        raise _failed(
            rtype, wanted, f'expected response.uid="{uid}", got "{response.get("uid", "")}"'
        )
    result = response.get("result") or {}
    if result.get("status") != "Success":
        raise _failed(rtype, wanted, str(result.get("message") or "conversion failed"))
    found = response.get("convertedObjects")
    if not isinstance(found, list) or len(found) != len(objs):
        count = len(found) if isinstance(found, list) else 0
        raise internal_error(
            f"conversion webhook for {wanted}, Kind={rtype.kind} returned {count} objects, "
            f"expected {len(objs)}"
        )
    return [_checked(rtype, wanted, index, objs[index], obj) for index, obj in enumerate(found)]


def _checked(
    rtype: ResourceType, wanted: str, index: int, sent: Mapping[str, Any], got: Any
) -> dict[str, Any]:
    if not isinstance(got, dict):
        raise _failed(rtype, wanted, f"converted object at index {index} is not an object")
    if got.get("apiVersion") != wanted:
        raise _failed(
            rtype, wanted,
            f'invalid converted object at index {index}: expected apiVersion "{wanted}", '
            f'got "{got.get("apiVersion")}"',
        )  # fmt: skip
    if got.get("kind") != sent.get("kind"):
        raise _failed(
            rtype, wanted,
            f'invalid converted object at index {index}: expected kind "{sent.get("kind")}", '
            f'got "{got.get("kind")}"',
        )  # fmt: skip
    sent_meta = sent.get("metadata") or {}
    got_meta = got.get("metadata") if isinstance(got.get("metadata"), dict) else {}
    assert isinstance(got_meta, dict)
    if got_meta.get("uid") != sent_meta.get("uid"):
        raise _failed(
            rtype, wanted,
            f'invalid converted object at index {index}: expected metadata.uid '
            f'"{sent_meta.get("uid")}", got "{got_meta.get("uid")}"',
        )  # fmt: skip
    kept = {k: v for k, v in sent_meta.items() if k not in ("labels", "annotations")}
    for key in ("labels", "annotations"):
        if got_meta.get(key):
            kept[key] = got_meta[key]
    return {**got, "metadata": kept}
