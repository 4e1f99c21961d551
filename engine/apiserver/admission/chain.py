"""The calls the verbs make: a write's admission chain (mutating webhooks, then the
schema step, then validating webhooks), a delete's review, and the conversion of custom
resources between the version a client uses and the storage version."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engine.apiserver.admission import conversion
from engine.apiserver.admission.review import AdmissionAttributes
from engine.apiserver.authn.user_info import UserInfo
from engine.apiserver.schema.admission import Admitted
from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.store.errors import ApiError, invalid
from engine.apiserver.store.resource_types import ResourceType


def _equivalents(ctx: ApiContext, rtype: ResourceType) -> list[ResourceType]:
    return [
        other
        for other in ctx.registry.all_types()
        if other.group == rtype.group and other.plural == rtype.plural and other is not rtype
    ]


def _kept_identity(
    attrs: AdmissionAttributes, before: Mapping[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    """Refuse a mutation of metadata.name or namespace; undo one of `status` on the main
    resource (and of anything but status on the status subresource), as upstream's
    update strategies reset what a request may not change."""
    if not isinstance(after.get("metadata"), dict):
        raise ApiError(422, "metadata must be an object", reason="Invalid")
    old_meta, new_meta = before.get("metadata") or {}, after["metadata"]
    if attrs.rtype.namespaced and new_meta.get("namespace") != old_meta.get("namespace"):
        raise ApiError(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        )
    if new_meta.get("name") != old_meta.get("name"):
        name = str(old_meta.get("name", ""))
        if attrs.operation == "CREATE":
            raise ApiError(
                400,
                f"the name of the object ({new_meta.get('name')}) does not match the name of "
                f"the request ({name}): a mutating webhook may not rename it",
            )
        message = f'Invalid value: "{new_meta.get("name")}": field is immutable'
        cause = {"reason": "FieldValueInvalid", "field": "metadata.name", "message": message}
        raise invalid(attrs.rtype.kind, name, group=attrs.rtype.group, causes=[cause])
    if attrs.kind is not None or not attrs.rtype.status_subresource:
        return after
    if attrs.subresource == "status":
        kept = {k: v for k, v in before.items() if k not in ("status", "metadata")}
        return {
            **kept,
            "metadata": new_meta,
            **({"status": after["status"]} if "status" in after else {}),
        }
    result = {k: v for k, v in after.items() if k != "status"}
    if "status" in before:
        result["status"] = before["status"]
    return result


async def admitted(
    ctx: ApiContext,
    attrs: AdmissionAttributes,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    schema_step: Callable[[dict[str, Any]], Admitted],
) -> Admitted:
    """`obj` through mutating webhooks, `schema_step` (validation and defaulting) and
    validating webhooks, in that order; raises the first refusal or failure."""
    hooks = ctx.webhooks
    if hooks is None or not hooks.configured:
        return schema_step(obj)
    equivalents = _equivalents(ctx, attrs.rtype)
    mutated, warned = await hooks.mutate(attrs, obj, old, equivalents)
    assert mutated is not None
    if mutated is not obj:
        mutated = _kept_identity(attrs, obj, mutated)
    result = schema_step(mutated)
    more = await hooks.validate(attrs, result.obj, old, equivalents)
    return Admitted(obj=result.obj, warnings=(*result.warnings, *warned, *more))


async def reviewed_delete(
    ctx: ApiContext,
    rtype: ResourceType,
    stored: dict[str, Any],
    *,
    user: UserInfo | None,
    dry_run: bool,
) -> None:
    """A DELETE through the webhooks that match it (object null, oldObject the object)."""
    hooks = ctx.webhooks
    if hooks is None or not hooks.configured:
        return
    meta = stored.get("metadata") or {}
    options: dict[str, Any] = {"dryRun": ["All"]} if dry_run else {}
    attrs = AdmissionAttributes(
        operation="DELETE", rtype=rtype, subresource="", namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name", "")), user=user, dry_run=dry_run, options=options,
    )  # fmt: skip
    old = (await in_version(ctx, rtype, [stored]))[0]
    equivalents = _equivalents(ctx, rtype)
    await hooks.mutate(attrs, None, old, equivalents)
    await hooks.validate(attrs, None, old, equivalents)


async def in_version(
    ctx: ApiContext, rtype: ResourceType, objs: Sequence[Mapping[str, Any]], version: str = ""
) -> list[dict[str, Any]]:
    """Custom resources `objs` as `version` (default: rtype's) shows them, converted
    through the CRD's strategy (one ConversionReview for all that need it)."""
    wanted = version or rtype.version
    if not conversion.needs_conversion(rtype, objs, wanted):
        return [o if isinstance(o, dict) else dict(o) for o in objs]
    client = ctx.webhooks.client if ctx.webhooks is not None else None
    return await conversion.converted(client, rtype, objs, wanted)


async def for_storage(ctx: ApiContext, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """A custom resource in its CRD's storage version (unchanged for built-ins)."""
    if not rtype.custom or not rtype.storage_version or rtype.storage_version == rtype.version:
        return obj
    return (await in_version(ctx, rtype, [obj], rtype.storage_version))[0]
