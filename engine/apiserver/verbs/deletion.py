"""DELETE and deletecollection: preconditions, propagation policy finalizers, dry run.

An object with finalizers (or deleted with Foreground/Orphan propagation) is only marked
deleting (deletionTimestamp set, MODIFIED); otherwise it is removed at once (DELETED).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.apiserver.admission.chain import reviewed_delete
from engine.apiserver.authn.user_info import UserInfo
from engine.apiserver.gc.cascade import removal_writes
from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.store.errors import ApiError, conflict, not_found, success_status
from engine.apiserver.store.resource_types import ResourceType
from engine.apiserver.store.storage import StaleWrite, Write
from engine.apiserver.verbs import deletion_holds as holds
from engine.apiserver.verbs import lifecycle

POLICIES = ("Background", "Foreground", "Orphan")
PROTECTED_NAMESPACES = (
    "/namespaces//default",
    "/namespaces//kube-system",
    "/namespaces//kube-public",
)
_MAX_RETRIES = 50


@dataclass(frozen=True)
class DeleteOptions:
    """DeleteOptions from the body or the query; `policy` None means the type's default;
    `user` is who deletes (what admission webhooks are told)."""

    policy: str | None = None
    precondition_uid: str | None = None
    precondition_rv: str | None = None
    dry_run: bool = False
    grace_period: int | None = None
    user: UserInfo | None = None


def parse_delete_options(body: Mapping[str, Any], query: Mapping[str, str]) -> DeleteOptions:
    """Merge a DeleteOptions body with query parameters; ApiError 400 for a bad policy."""
    policy = body.get("propagationPolicy") or query.get("propagationPolicy")
    orphan = body.get("orphanDependents", query.get("orphanDependents"))
    if policy is None and orphan is not None:
        policy = "Orphan" if str(orphan).lower() in ("true", "1") else "Background"
    if policy is not None and policy not in POLICIES:
        raise ApiError(400, f'propagationPolicy "{policy}" is not one of {", ".join(POLICIES)}')
    pre = body.get("preconditions") or {}
    dry = body.get("dryRun") or query.get("dryRun")
    grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
    return DeleteOptions(
        grace_period=int(grace) if str(grace).lstrip("-").isdigit() else None,
        policy=policy,
        precondition_uid=pre.get("uid"),
        precondition_rv=pre.get("resourceVersion"),
        dry_run=bool(dry) and "All" in (dry if isinstance(dry, list) else [dry]),
    )


def _gc_finalizer(policy: str | None) -> str | None:
    if policy == "Foreground":
        return lifecycle.FOREGROUND
    if policy == "Orphan":
        return lifecycle.ORPHAN
    return None


async def delete_object(
    ctx: ApiContext, rtype: ResourceType, key: str, opts: DeleteOptions
) -> tuple[dict[str, Any], bool]:
    """Delete the object at `key`; returns (response body, removed at once)."""
    name = key.rsplit("/", 1)[-1]
    if key in PROTECTED_NAMESPACES:
        raise ApiError(
            403,
            f'namespaces "{name}" is forbidden: this namespace may not be deleted',
            reason="Forbidden",
            details={"name": name, "kind": "namespaces"},
        )
    for _ in range(_MAX_RETRIES):
        obj = ctx.store.get(key)
        if obj is None:
            raise not_found(rtype.plural, name, group=rtype.group)
        meta = obj["metadata"]
        if (opts.precondition_uid and opts.precondition_uid != meta.get("uid")) or (
            opts.precondition_rv and opts.precondition_rv != meta.get("resourceVersion")
        ):
            raise conflict(rtype.plural, name, group=rtype.group)
        if lifecycle.is_deleting(obj):
            return obj, False
        await reviewed_delete(ctx, rtype, obj, user=opts.user, dry_run=opts.dry_run)
        finalizer = _gc_finalizer(opts.policy)
        grace = holds.grace_seconds(rtype, obj, requested=opts.grace_period)
        try:
            if meta.get("finalizers") or finalizer or grace or holds.namespace_held(obj):
                marked = lifecycle.mark_deleting(obj, now=ctx.now(), add_finalizer=finalizer)
                marked = holds.marked_terminating(marked, grace=grace)
                if opts.dry_run:
                    return marked, False
                changes = await ctx.store.commit([Write(key, marked, int(meta["resourceVersion"]))])
                return changes[0].body, False
            if opts.dry_run:
                return _removed_body(rtype, obj), True
            changes = await ctx.store.commit(removal_writes(ctx, key, obj))
        except StaleWrite:
            continue
        return _removed_body(rtype, changes[0].body), True
    raise conflict(rtype.plural, name, group=rtype.group)


def _removed_body(rtype: ResourceType, last: dict[str, Any]) -> dict[str, Any]:
    if rtype.custom:
        return last
    meta = last["metadata"]
    return success_status(
        {"name": meta.get("name", ""), "group": rtype.group, "kind": rtype.plural,
         "uid": meta.get("uid", "")}
    )  # fmt: skip


async def delete_collection(
    ctx: ApiContext, rtype: ResourceType, keys: list[str], opts: DeleteOptions
) -> list[dict[str, Any]]:
    """Delete every object at `keys` (already selected); returns their last states."""
    deleted: list[dict[str, Any]] = []
    for key in keys:
        before = ctx.store.get(key)
        if before is None:
            continue
        try:
            body, removed = await delete_object(ctx, rtype, key, opts)
        except ApiError as error:
            if error.code == 404:
                continue
            raise
        deleted.append(before if removed and body.get("kind") == "Status" else body)
    return deleted
