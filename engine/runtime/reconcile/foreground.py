"""Foreground deletion seen as waits: a primary object being deleted with the
`foregroundDeletion` finalizer waits for every primary object that names it in an
ownerReference with `blockOwnerDeletion: true` (pure reads of the view)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.runtime.reconcile.objects import Entry, PrimaryView

FOREGROUND_FINALIZER = "foregroundDeletion"


def deleting_in_foreground(entry: Entry | None) -> bool:
    """Whether `entry` exists, has a deletionTimestamp and the `foregroundDeletion` finalizer."""
    if entry is None or not entry.exists:
        return False
    metadata = entry.obj.get("metadata", {})
    finalizers = metadata.get("finalizers") or ()
    return bool(metadata.get("deletionTimestamp")) and FOREGROUND_FINALIZER in finalizers


def blocking_owner_uids(obj: Mapping[str, Any]) -> frozenset[str]:
    """The uids `obj` names in ownerReferences with `blockOwnerDeletion: true`."""
    references = obj.get("metadata", {}).get("ownerReferences") or ()
    return frozenset(
        str(ref.get("uid"))
        for ref in references
        if isinstance(ref, Mapping) and ref.get("blockOwnerDeletion") is True and ref.get("uid")
    )


def blocking_dependents(view: PrimaryView, owner_uid: str) -> frozenset[str]:
    """Keys of the existing objects in `view` that block the deletion of `owner_uid`."""
    found = set()
    for key in tuple(view.keys()):
        entry = view.get(key)
        if entry is not None and entry.exists and owner_uid in blocking_owner_uids(entry.obj):
            found.add(key)
    return frozenset(found)
