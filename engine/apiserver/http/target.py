"""Parse a resource URL into what it addresses: type, namespace, name and subresource."""

from __future__ import annotations

from dataclasses import dataclass

from engine.apiserver.store.errors import ApiError
from engine.apiserver.store.resource_types import Registry, ResourceType


@dataclass(frozen=True)
class Target:
    """What a resource URL points at; `name` None means the collection.

    `namespace` None means all namespaces (or a cluster-scoped type).
    """

    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None

    def key(self) -> str:
        """The storage key of the named object."""
        assert self.name is not None
        return self.rtype.key(self.namespace or "", self.name)


def parse_target(registry: Registry, path: str) -> Target:
    """Resolve `/api/v1/...` or `/apis/{g}/{v}/...`; ApiError(404) if nothing is served there.

    `/api/v1/namespaces/{ns}` and `/api/v1/namespaces/{ns}/status` address the Namespace
    itself; `/api/v1/namespaces/{ns}/{plural}/...` addresses objects inside it.
    """
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise ApiError(404, "the server could not find the requested resource")
    namespace: str | None = None
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise ApiError(404, "the server could not find the requested resource")
    rtype = registry.lookup(group, version, rest[0])
    if rtype is None:
        raise ApiError(404, "the server could not find the requested resource")
    name = rest[1] if len(rest) >= 2 else None
    subresource = rest[2] if len(rest) == 3 else None
    if namespace is not None and not rtype.namespaced:
        raise ApiError(404, "the server could not find the requested resource")
    if rtype.namespaced and name is not None and namespace is None:
        raise ApiError(404, "the server could not find the requested resource")
    if subresource is not None and not (
        (subresource == "status" and rtype.status_subresource)
        or (subresource == "scale" and rtype.scale_subresource)
    ):
        raise ApiError(404, "the server could not find the requested resource")
    return Target(rtype=rtype, namespace=namespace, name=name, subresource=subresource)
