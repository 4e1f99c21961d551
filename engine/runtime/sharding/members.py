"""Membership on Kubernetes Leases: each replica holds a member Lease of its own
(`<prefix>-member-<hash of identity>`, renewed by a `LeaderElector`), and reads the
member and shard Leases of the group.

A member is live while its Lease has a holder and this reader has seen it change within
the lease duration (a monotonic clock, as the elector times expiry; a member seen for the
first time counts as live for one lease duration). A released member Lease (graceful
stop) leaves the group at once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client

MEMBER_INFIX = "-member-"
SHARD_INFIX = "-"


def member_lease_name(prefix: str, identity: str) -> str:
    """The member Lease of `identity` (a valid object name whatever the identity is)."""
    return f"{prefix}{MEMBER_INFIX}{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


def shard_lease_name(prefix: str, shard: str) -> str:
    """The Lease through which `shard` is held: `<prefix>-shard-07`."""
    return f"{prefix}{SHARD_INFIX}{shard}"


@dataclass(frozen=True, slots=True)
class LeaseView:
    """One Lease as read: name, holder ('' when released), term, renewal, duration."""

    name: str
    holder: str
    term: int
    renewed: datetime | None
    duration: float
    resource_version: str

    def expired(self, now: datetime) -> bool:
        """By the Lease's own renewTime (for a one-off reader such as `engine shards`)."""
        if not self.holder or self.renewed is None:
            return True
        return (now - self.renewed).total_seconds() > self.duration


async def read_leases(api_client: Any, namespace: str, prefix: str) -> list[LeaseView]:
    """Every Lease in `namespace` whose name starts with `<prefix>-`, sorted by name.

    The listing is read as plain JSON (every replica lists the group every retry period;
    building the client's models, dates parsed by dateutil, cost more than the request).
    Errors: the client's `ApiException`, `OSError` and `TimeoutError`."""
    api: Any = client.CoordinationV1Api(api_client)
    response = await api.list_namespaced_lease(namespace, _preload_content=False)
    try:
        listed = json.loads(await response.read())
    finally:
        response.release()
    views = []
    for lease in listed.get("items") or ():
        metadata, spec = lease.get("metadata") or {}, lease.get("spec") or {}
        name = str(metadata.get("name") or "")
        if not name.startswith(f"{prefix}-"):
            continue
        views.append(
            LeaseView(
                name=name,
                holder=str(spec.get("holderIdentity") or ""),
                term=int(spec.get("leaseTransitions") or 0),
                renewed=_timestamp(spec.get("renewTime")),
                duration=float(spec.get("leaseDurationSeconds") or 0),
                resource_version=str(metadata.get("resourceVersion") or ""),
            )
        )
    return sorted(views, key=lambda view: view.name)


def _timestamp(text: object) -> datetime | None:
    """A Lease's MicroTime (`2026-01-02T03:04:05.123456Z`) as an aware datetime."""
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class MemberDirectory:
    """The live members of a group, as this replica sees them.

    `await live()` lists the group's member Leases and returns the identities of those
    that are held and changed within `lease_duration` seconds of this reader's clock.
    """

    def __init__(
        self,
        api_client: Any,
        *,
        namespace: str,
        prefix: str,
        lease_duration: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api, self._namespace, self._prefix = api_client, namespace, prefix
        self._duration = lease_duration
        self._monotonic = monotonic
        self._seen: dict[str, tuple[str, float]] = {}  # lease name -> (resourceVersion, at)
        self._leases: dict[str, LeaseView] = {}

    async def live(self) -> list[str]:
        """Identities of the live members, sorted. Errors: as `read_leases`."""
        leases = await read_leases(self._api, self._namespace, self._prefix)
        now = self._monotonic()
        members: list[str] = []
        names: set[str] = set()
        for lease in leases:
            names.add(lease.name)
            self._leases[lease.name] = lease
            seen = self._seen.get(lease.name)
            if seen is None or seen[0] != lease.resource_version:
                self._seen[lease.name] = seen = (lease.resource_version, now)
            if MEMBER_INFIX in lease.name and lease.holder and now - seen[1] < self._duration:
                members.append(lease.holder)
        for gone in set(self._seen) - names:
            del self._seen[gone]
            self._leases.pop(gone, None)
        return sorted(set(members))

    def last_change(self, name: str) -> tuple[LeaseView, float] | None:
        """The Lease `name` as last listed and when (this reader's monotonic clock) it was
        first seen in that version; None when it was not listed."""
        seen, lease = self._seen.get(name), self._leases.get(name)
        if seen is None or lease is None:
            return None
        return lease, seen[1]
