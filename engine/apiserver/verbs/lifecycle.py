"""Object lifecycle rules, pure: what the server sets on create, keeps on update, and does
on delete (generation, uid, timestamps, status isolation, finalizers, deletionTimestamp).
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.apiserver.store.errors import ApiError
from engine.apiserver.store.resource_types import ResourceType

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
_SERVER_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def timestamp(now: datetime) -> str:
    """RFC 3339 in UTC with seconds precision, like `2024-01-02T03:04:05Z`."""
    return _timestamp_of((now.year, now.month, now.day, now.hour, now.minute, now.second))


@functools.lru_cache(maxsize=8)
def _timestamp_of(fields: tuple[int, int, int, int, int, int]) -> str:
    """One second's timestamp, formatted once (strftime costs several times the lookup;
    every write asks for the current second)."""
    return datetime(*fields).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    """A random (version 4) UUID as `str(uuid.uuid4())` writes it, formatted directly."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def generated_name(prefix: str) -> str:
    """`prefix` plus five random characters, as for `metadata.generateName`."""
    return prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


def is_deleting(obj: Mapping[str, Any]) -> bool:
    """Whether `deletionTimestamp` is set."""
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _spec_part(obj: Mapping[str, Any], *, without_status: bool) -> dict[str, Any]:
    skipped = {"metadata", "status"} if without_status else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skipped}


def prepare_create(
    rtype: ResourceType,
    body: Mapping[str, Any],
    *,
    namespace: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The object to store for a create: server-owned metadata set, status dropped if the
    type has a status subresource. Raises ApiError(400) for a namespace that differs from
    the URL's, or for a missing name."""
    if not isinstance(body, Mapping) or not isinstance(body.get("metadata", {}), Mapping):
        raise ApiError(400, "the request body must be a JSON object with object metadata")
    obj = dict(body)
    meta = dict(obj.get("metadata") or {})
    if rtype.namespaced:
        given = meta.get("namespace")
        if given and given != namespace:
            raise ApiError(
                400,
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if not meta.get("name"):
        prefix = meta.get("generateName")
        if not prefix:
            raise ApiError(
                422,
                f'{rtype.kind} "" is invalid: metadata.name: Required value: name or '
                "generateName is required",
                reason="Invalid",
                details={
                    "kind": rtype.kind,
                    "group": rtype.group,
                    "causes": [
                        {
                            "reason": "FieldValueRequired",
                            "field": "metadata.name",
                            "message": "Required value: name or generateName is required",
                        }
                    ],
                },
            )
        meta["name"] = generated_name(str(prefix))
    for server_owned in (*_SERVER_METADATA, "resourceVersion", "generation"):
        meta.pop(server_owned, None)
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = timestamp(now)
    meta["generation"] = 1
    obj["metadata"] = meta
    obj["apiVersion"] = rtype.group_version
    obj["kind"] = rtype.kind
    if rtype.status_subresource:
        obj.pop("status", None)
    return obj


def prepare_update(
    rtype: ResourceType,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    status_only: bool,
) -> dict[str, Any]:
    """The object to store for an update of `old` to `new`.

    A status write keeps everything of `old` but `.status`; a main write keeps `old`'s
    status when the type has a status subresource. Server-owned metadata (uid,
    creationTimestamp, deletionTimestamp, generation) is kept from `old`; generation goes
    up by one when anything outside metadata (and status, with a status subresource)
    changed. Raises ApiError(422) when a finalizer is added to an object being deleted.
    """
    old_meta = old.get("metadata") or {}
    if status_only:
        obj = dict(old)
        if "status" in new:
            obj["status"] = new["status"]
        else:
            obj.pop("status", None)
        return obj
    obj = dict(new)
    meta = dict(obj.get("metadata") or {})
    for kept in (*_SERVER_METADATA, "name", "namespace"):
        if kept in old_meta:
            meta[kept] = old_meta[kept]
        else:
            meta.pop(kept, None)
    meta.pop("resourceVersion", None)
    if rtype.status_subresource:
        if "status" in old:
            obj["status"] = old["status"]
        else:
            obj.pop("status", None)
    generation = int(old_meta.get("generation") or 1)
    if _spec_part(obj, without_status=rtype.status_subresource) != _spec_part(
        old, without_status=rtype.status_subresource
    ):
        generation += 1
    meta["generation"] = generation
    if old_meta.get("deletionTimestamp"):
        added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
        if added:
            message = "Forbidden: no new finalizers can be added if the object is being deleted"
            raise ApiError(
                422,
                f'{rtype.kind} "{old_meta.get("name")}" is invalid: metadata.finalizers: '
                f"{message}, found new finalizers {sorted(added)}",
                reason="Invalid",
                details={
                    "name": old_meta.get("name", ""),
                    "group": rtype.group,
                    "kind": rtype.kind,
                    "causes": [
                        {"reason": "FieldValueForbidden", "field": "metadata.finalizers",
                         "message": message}
                    ],
                },
            )  # fmt: skip
    obj["metadata"] = meta
    obj["apiVersion"] = old.get("apiVersion", rtype.group_version)
    obj["kind"] = rtype.kind
    return obj


def should_remove(obj: Mapping[str, Any]) -> bool:
    """A deleting object with no finalizers left is removed from storage."""
    meta = obj.get("metadata") or {}
    if obj.get("kind") == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
        return False  # held by its `kubernetes` finalizer until its contents are gone
    return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers")


def mark_deleting(
    obj: Mapping[str, Any], *, now: datetime, add_finalizer: str | None
) -> dict[str, Any]:
    """`obj` with deletionTimestamp set (kept if already set), grace 0, generation +1 on
    the first marking, and `add_finalizer` appended if given and absent."""
    meta = dict(obj.get("metadata") or {})
    if not meta.get("deletionTimestamp"):
        meta["deletionTimestamp"] = timestamp(now)
        meta["deletionGracePeriodSeconds"] = 0
        meta["generation"] = int(meta.get("generation") or 1) + 1
    finalizers = list(meta.get("finalizers") or ())
    if add_finalizer and add_finalizer not in finalizers:
        finalizers.append(add_finalizer)
    if finalizers:
        meta["finalizers"] = finalizers
    return {**obj, "metadata": meta}


def record_manager(
    obj: Mapping[str, Any],
    *,
    manager: str,
    operation: str,
    api_version: str,
    now: datetime,
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`obj` with one managedFields entry for `manager` and `operation` (replacing its own);
    `fields` is the entry's `fieldsV1` (an apply's field set; empty for an update)."""
    meta = dict(obj.get("metadata") or {})
    entries = [
        e
        for e in (meta.get("managedFields") or ())
        if not (e.get("manager") == manager and e.get("operation") == operation)
    ]
    entries.append(
        {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version,
            "time": timestamp(now),
            "fieldsType": "FieldsV1",
            "fieldsV1": dict(fields or {}),
        }
    )
    meta["managedFields"] = entries
    return {**obj, "metadata": meta}


def same_content(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two objects differ only in resourceVersion and managedFields times (a no-op)."""
    return _comparable(a) == _comparable(b)


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("managedFields", None)
    return {**obj, "metadata": meta}
