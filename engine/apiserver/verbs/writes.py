"""Create, replace (PUT) and patch: lifecycle rules, admission, conflicts, dry run, commit.

These are the write paths of both the HTTP handlers and the garbage collector. A write
that changes nothing stores nothing (no new resourceVersion, no watch event).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.apiserver.admission import chain
from engine.apiserver.admission.review import AdmissionAttributes
from engine.apiserver.authn.user_info import UserInfo
from engine.apiserver.gc.cascade import removal_writes
from engine.apiserver.http.target import Target
from engine.apiserver.schema.admission import Admitted, admit, crd_status
from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.store.errors import ApiError, already_exists, conflict, not_found
from engine.apiserver.store.resource_types import ResourceType
from engine.apiserver.store.storage import StaleWrite, Write
from engine.apiserver.verbs import apply_fields, lifecycle, patch

_MAX_RETRIES = 50


@dataclass(frozen=True)
class WriteOptions:
    """Query options of a write; `field_validation` is Strict, Warn, Ignore or "";
    `user` is who writes (what admission webhooks are told)."""

    dry_run: bool = False
    field_manager: str | None = None
    field_validation: str = ""
    force: bool = False
    user: UserInfo | None = None

    def attributes(self, target: Target, operation: str, name: str) -> AdmissionAttributes:
        """What admission webhooks are told about this write."""
        options: dict[str, Any] = {"fieldManager": self.field_manager} if self.field_manager else {}
        if self.dry_run:
            options["dryRun"] = ["All"]
        return AdmissionAttributes(
            operation=operation, rtype=target.rtype, subresource=target.subresource or "",
            namespace=target.namespace or "", name=name, user=self.user,
            dry_run=self.dry_run, options=options,
        )  # fmt: skip


@dataclass(frozen=True)
class WriteResult:
    """The object as stored (or as it would be, with dry run) and the Warning headers."""

    obj: dict[str, Any]
    created: bool = False
    warnings: tuple[str, ...] = ()


def require_namespace(ctx: ApiContext, target: Target) -> None:
    """ApiError 404 when a namespaced write targets a namespace that does not exist."""
    namespace = ctx.store.get(f"/namespaces//{target.namespace}") if target.rtype.namespaced else {}
    if namespace is None:
        raise not_found("namespaces", str(target.namespace), group="")
    if lifecycle.is_deleting(namespace) and target.rtype.kind != "Event":
        raise ApiError(
            403,
            f"{target.rtype.plural} is forbidden: unable to create new content in namespace "
            f"{target.namespace} because it is being terminated",
            reason="Forbidden",
        )


def _server_status(rtype: ResourceType, obj: dict[str, Any], *, ctx: ApiContext) -> dict[str, Any]:
    if rtype.group == "apiextensions.k8s.io" and rtype.kind == "CustomResourceDefinition":
        return {**obj, "status": crd_status(obj, now=lifecycle.timestamp(ctx.now()))}
    if rtype.group == "" and rtype.kind == "Namespace":
        phase = "Terminating" if lifecycle.is_deleting(obj) else "Active"
        return {**obj, "status": {**(obj.get("status") or {}), "phase": phase}}
    return obj


def _with_manager(
    obj: dict[str, Any],
    opts: WriteOptions,
    *,
    ctx: ApiContext,
    apply: bool,
    fields: apply_fields.FieldSet | None = None,
) -> dict[str, Any]:
    if not opts.field_manager:
        return obj
    return lifecycle.record_manager(
        obj,
        manager=opts.field_manager,
        operation="Apply" if apply else "Update",
        api_version=str(obj.get("apiVersion", "")),
        now=ctx.now(),
        fields=fields,
    )


async def create(
    ctx: ApiContext,
    target: Target,
    body: dict[str, Any],
    opts: WriteOptions,
    *,
    apply: bool = False,
    applied_fields: apply_fields.FieldSet | None = None,
) -> WriteResult:
    """POST to a collection: 201 semantics; 409 AlreadyExists for a taken name."""
    require_namespace(ctx, target)
    rtype = target.rtype
    obj = lifecycle.prepare_create(rtype, body, namespace=target.namespace, now=ctx.now())
    if target.name is not None and obj["metadata"]["name"] != target.name:
        raise ApiError(400, "the name of the object does not match the name on the URL")
    obj = _server_status(rtype, obj, ctx=ctx)
    attrs = opts.attributes(target, "CREATE", str(obj["metadata"]["name"]))
    admitted = await chain.admitted(
        ctx, attrs, obj, None, lambda o: admit(rtype, o, field_validation=opts.field_validation)
    )
    obj = _with_manager(admitted.obj, opts, ctx=ctx, apply=apply, fields=applied_fields)
    name = obj["metadata"]["name"]
    key = rtype.key(target.namespace or "", name)
    if ctx.store.get(key) is not None:
        raise already_exists(rtype.plural, name, group=rtype.group)
    if opts.dry_run:
        return WriteResult(obj=obj, created=True, warnings=admitted.warnings)
    try:
        changes = await ctx.store.commit([Write(key, await chain.for_storage(ctx, rtype, obj), 0)])
    except StaleWrite:
        raise already_exists(rtype.plural, name, group=rtype.group) from None
    shown = await chain.in_version(ctx, rtype, [changes[0].body])
    return WriteResult(obj=shown[0], created=True, warnings=admitted.warnings)


async def commit_prepared(
    ctx: ApiContext, key: str, old: dict[str, Any], new: dict[str, Any], *, dry_run: bool
) -> dict[str, Any]:
    """Store `new` over `old` (removing it if it is deleting with no finalizers left).

    Raises StaleWrite if `old` is no longer current. A no-op returns `old` untouched.
    """
    old_rv = old["metadata"]["resourceVersion"]
    if lifecycle.should_remove(new):
        final = {**new, "metadata": {**new["metadata"], "resourceVersion": old_rv}}
        if dry_run:
            return final
        if ctx.store.get(key) is not old:
            raise StaleWrite(key)
        changes = await ctx.store.commit(removal_writes(ctx, key, final))
        return changes[0].body
    if lifecycle.same_content(
        old, {**new, "metadata": {**new["metadata"], "resourceVersion": old_rv}}
    ):
        return old
    if dry_run:
        return {**new, "metadata": {**new["metadata"], "resourceVersion": old_rv}}
    changes = await ctx.store.commit([Write(key, new, int(old_rv))])
    return changes[0].body


async def _finish_update(
    ctx: ApiContext,
    target: Target,
    old: dict[str, Any],
    new: dict[str, Any],
    opts: WriteOptions,
    *,
    apply: bool,
    applied_fields: apply_fields.FieldSet | None = None,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The object to store over `old` (both in the request's version) and its warnings,
    through the admission chain; then in the storage version."""
    rtype = target.rtype

    def prepared_from(wanted: dict[str, Any]) -> dict[str, Any]:
        status_only = target.subresource == "status"
        prepared = lifecycle.prepare_update(rtype, old, wanted, status_only=status_only)
        if not status_only:
            prepared = _server_status(rtype, prepared, ctx=ctx)
        return prepared

    first = prepared_from(new)

    def schema_step(obj: dict[str, Any]) -> Admitted:  # mutated objects are prepared again
        ready = obj if obj is first else prepared_from(obj)
        return admit(rtype, ready, field_validation=opts.field_validation)

    attrs = opts.attributes(target, "UPDATE", str(old["metadata"].get("name", "")))
    admitted = await chain.admitted(ctx, attrs, first, old, schema_step)
    final = _with_manager(admitted.obj, opts, ctx=ctx, apply=apply, fields=applied_fields)
    return await chain.for_storage(ctx, rtype, final), admitted.warnings


async def update(
    ctx: ApiContext, target: Target, body: dict[str, Any], opts: WriteOptions
) -> WriteResult:
    """PUT: replace the object; 409 if the body's resourceVersion is stale, 404 if missing."""
    rtype = target.rtype
    assert target.name is not None
    key = target.key()
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    if meta.get("name") and meta["name"] != target.name:
        raise ApiError(
            400,
            f"the name of the object ({meta['name']}) does not match the name on the URL "
            f"({target.name})",
        )
    wanted_rv = str(meta.get("resourceVersion") or "")
    for _ in range(_MAX_RETRIES):
        stored_old = ctx.store.get(key)
        if stored_old is None:
            raise not_found(rtype.plural, target.name, group=rtype.group)
        if wanted_rv and wanted_rv != stored_old["metadata"]["resourceVersion"]:
            raise conflict(rtype.plural, target.name, group=rtype.group)
        old = (await chain.in_version(ctx, rtype, [stored_old]))[0]
        new, warnings = await _finish_update(ctx, target, old, body, opts, apply=False)
        try:
            stored = await commit_prepared(ctx, key, stored_old, new, dry_run=opts.dry_run)
        except StaleWrite:
            if wanted_rv:
                raise conflict(rtype.plural, target.name, group=rtype.group) from None
            continue
        shown = await chain.in_version(ctx, rtype, [stored])
        return WriteResult(obj=shown[0], warnings=warnings)
    raise conflict(rtype.plural, target.name, group=rtype.group)


async def patch_object(
    ctx: ApiContext, target: Target, raw: bytes, content_type: str, opts: WriteOptions
) -> WriteResult:
    """PATCH by content type (merge, JSON, strategic merge, apply); apply creates if missing.

    A `metadata.resourceVersion` in the patch is a precondition (409 when stale).
    """
    rtype = target.rtype
    assert target.name is not None
    key = target.key()
    kind = content_type.split(";", 1)[0].strip().lower()
    is_apply = kind == patch.APPLY
    if is_apply and not opts.field_manager:
        raise ApiError(
            422,
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
            "is required for apply patch",
            reason="Invalid",
        )
    for _ in range(_MAX_RETRIES):
        stored_old = ctx.store.get(key)
        if stored_old is None:
            if not is_apply or target.subresource:
                raise not_found(rtype.plural, target.name, group=rtype.group)
            body = _patched({}, raw, content_type, custom=rtype.custom)
            body.setdefault("metadata", {}).setdefault("name", target.name)
            try:
                return await create(
                    ctx, replace(target, name=target.name), body, opts, apply=True,
                    applied_fields=apply_fields.fields_of(body),
                )  # fmt: skip
            except ApiError as error:
                if error.reason == "AlreadyExists":
                    continue
                raise
        old = (await chain.in_version(ctx, rtype, [stored_old]))[0]
        fields: apply_fields.FieldSet | None = None
        base = old
        if is_apply:  # fields this manager applied before and no longer sets go
            fields = apply_fields.fields_of(_patched({}, raw, content_type, custom=rtype.custom))
            manager = str(opts.field_manager)
            base = apply_fields.pruned(
                old,
                before=apply_fields.owned_by(old, manager),
                now=fields,
                others=apply_fields.others_applied(old, manager),
            )
        patched = _patched(base, raw, content_type, custom=rtype.custom)
        old_rv = old["metadata"]["resourceVersion"]
        given_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if given_rv and str(given_rv) != old_rv:
            raise conflict(rtype.plural, target.name, group=rtype.group)
        new, warnings = await _finish_update(
            ctx, target, old, patched, opts, apply=is_apply, applied_fields=fields
        )
        try:
            stored = await commit_prepared(ctx, key, stored_old, new, dry_run=opts.dry_run)
        except StaleWrite:
            continue
        shown = await chain.in_version(ctx, rtype, [stored])
        return WriteResult(obj=shown[0], warnings=warnings)
    raise conflict(rtype.plural, target.name, group=rtype.group)


def _patched(old: dict[str, Any], raw: bytes, content_type: str, *, custom: bool) -> dict[str, Any]:
    try:
        result = patch.apply_patch(old, raw, content_type, custom_resource=custom)
    except patch.PatchError as bad:
        raise ApiError(bad.code, bad.message, reason=bad.reason) from None
    if not isinstance(result.get("metadata", {}), dict):
        raise ApiError(422, "metadata must be an object", reason="Invalid")
    return result
