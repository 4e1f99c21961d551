"""Garbage-collection planning: from the live objects' owner graph, what to do next.

Pure: `plan` reads a snapshot of live objects reduced to `Node`s (every one, or the part a
change affected plus the owners and dependents it must consult) and returns the actions
the collector should apply. The collector applies them and plans again until nothing is left.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


@dataclass(frozen=True)
class OwnerLink:
    """One `metadata.ownerReferences[]` entry, reduced to what the collector needs."""

    uid: str
    block_owner_deletion: bool


@dataclass(frozen=True)
class Node:
    """One live object (deleting ones included) as the collector sees it."""

    key: str  # storage key of the object (opaque to gc)
    uid: str
    owners: tuple[OwnerLink, ...]
    finalizers: tuple[str, ...]
    deleting: bool  # deletionTimestamp is set


@dataclass(frozen=True)
class DeleteObject:
    """Delete the object at `key` with `propagation` "Background" or "Foreground"."""

    key: str
    propagation: str


@dataclass(frozen=True)
class RemoveOwnerLinks:
    """Drop every ownerReference of the object at `key` whose uid is in `owner_uids`."""

    key: str
    owner_uids: tuple[str, ...]


@dataclass(frozen=True)
class RemoveFinalizer:
    """Remove `finalizer` ("foregroundDeletion" or "orphan") from the object at `key`."""

    key: str
    finalizer: str


Action = DeleteObject | RemoveOwnerLinks | RemoveFinalizer


def _waits_for_dependents(node: Node) -> bool:
    """The owner is being deleted in the foreground (and is not orphaning instead)."""
    return node.deleting and FOREGROUND in node.finalizers and ORPHAN not in node.finalizers


def _orphans_dependents(node: Node) -> bool:
    return node.deleting and ORPHAN in node.finalizers


def _dependent_actions(node: Node, by_uid: dict[str, Node]) -> list[Action]:
    """What to do with one object because of the state of its owners.

    Each owner is one of: gone (its uid is not live), waiting (being deleted in the
    foreground), orphaning (being deleted with `orphan`) or solid (any other live
    object, orphaning ones included: they hold the dependent until they let go).
    """
    orphaning: list[str] = []
    gone_or_waiting: list[str] = []
    waiting = False
    solid = False
    for link in node.owners:
        owner = by_uid.get(link.uid)
        if owner is None:
            gone_or_waiting.append(link.uid)
        elif _waits_for_dependents(owner):
            gone_or_waiting.append(link.uid)
            waiting = True
        else:
            solid = True
            if _orphans_dependents(owner):
                orphaning.append(link.uid)
    if solid:
        # Another owner holds the object: it survives, without the links to owners that
        # are gone or are waiting for their dependents (so they need not wait for it).
        to_remove = tuple(dict.fromkeys(orphaning + gone_or_waiting))
        return [RemoveOwnerLinks(node.key, to_remove)] if to_remove else []
    if gone_or_waiting and not node.deleting:
        return [DeleteObject(node.key, "Foreground" if waiting else "Background")]
    return []


def _owner_actions(node: Node, dependents: list[tuple[Node, OwnerLink]]) -> list[Action]:
    """Whether an owner being deleted may drop its `orphan`/`foregroundDeletion` finalizer."""
    if not node.deleting:
        return []
    if ORPHAN in node.finalizers:
        return [] if dependents else [RemoveFinalizer(node.key, ORPHAN)]
    if FOREGROUND in node.finalizers:
        blocked = any(
            link.block_owner_deletion or not dependent.deleting for dependent, link in dependents
        )
        return [] if blocked else [RemoveFinalizer(node.key, FOREGROUND)]
    return []


def plan(nodes: Iterable[Node], *, context: Iterable[Node] = ()) -> list[Action]:
    """The collector's next actions for `nodes`, given the live objects `nodes` and `context`.

    Without `context`, `nodes` is the snapshot of every live object. With it, only `nodes`
    get actions and `context` holds further live objects that are consulted: the result
    equals the full plan's actions for `nodes` provided `nodes` + `context` include every
    live owner of each node and, for each node being deleted, every object linking to it
    (an owner absent from both counts as gone). A node also in `context` is taken from
    `nodes`.

    Contract:
    - A dependent none of whose owners lives any more is deleted in the background; one
      whose only remaining owners are being deleted in the foreground is deleted in the
      foreground (so its own dependents go first too).
    - A dependent that still has a live owner loses only the links to owners that are
      gone or deleting in the foreground, and always the links to owners that orphan it.
    - An owner deleting with `orphan` drops that finalizer once no object links to it.
    - An owner deleting with `foregroundDeletion` drops that finalizer once no object
      links to it with blockOwnerDeletion=true (those must be fully gone, their own
      finalizers included) and every other object linking to it is being deleted.
    - No churn: every action changes something (no delete of a deleting object, no
      removal of an absent link or finalizer). Applying the actions and planning again
      reaches a fixed point, except that foreground deletion through a cycle of
      blockOwnerDeletion links waits forever, as in Kubernetes.
    - Deterministic: actions come ordered by key, dependents' actions first.
    """
    ordered = sorted(nodes, key=lambda node: node.key)
    keys = {node.key for node in ordered}
    consulted = [node for node in context if node.key not in keys]
    by_uid = {node.uid: node for node in consulted}
    by_uid.update((node.uid, node) for node in ordered)
    dependents: dict[str, list[tuple[Node, OwnerLink]]] = {}
    for node in [*ordered, *consulted]:
        for link in node.owners:
            dependents.setdefault(link.uid, []).append((node, link))
    actions: list[Action] = []
    for node in ordered:
        actions.extend(_dependent_actions(node, by_uid))
    for node in ordered:
        actions.extend(_owner_actions(node, dependents.get(node.uid, [])))
    return actions
