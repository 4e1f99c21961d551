"""The resource types served: built-in kinds, those defined by stored CRDs, and discovery.

A `ResourceType` says where a kind lives (group, version, plural), whether it is
namespaced, and what it supports (status subresource, schema, printer columns).
`Registry.refresh` rebuilds the CRD-defined types from the stored CRD objects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CRD_KEY_PREFIX = "apiextensions.k8s.io/customresourcedefinitions/"


@dataclass(frozen=True)
class ResourceType:
    """One served resource: `group` is "" for the core group."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    schema: Mapping[str, Any] | None = None
    printer_columns: tuple[Mapping[str, Any], ...] = ()
    custom: bool = False
    has_defaults: bool = False
    schema_revision: int = 0  # the CRD's resourceVersion: objects written later are defaulted
    storage_groups: tuple[str, ...] = field(default=())
    scale_subresource: bool = False
    verbs: tuple[str, ...] = VERBS  # the review kinds are create-only
    storage_version: str = ""  # a CRD's storage version ("" for built-ins: stored as served)
    conversion: Mapping[str, Any] | None = None  # a CRD's spec.conversion

    @property
    def group_version(self) -> str:
        """ "v1" for core, "group/version" otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_group(self) -> str:
        """The group that names the storage key (events.k8s.io Events share core storage)."""
        return self.storage_groups[0] if self.storage_groups else self.group

    def key(self, namespace: str, name: str) -> str:
        """Storage key `{group}/{plural}/{namespace}/{name}`."""
        return f"{self.storage_group}/{self.plural}/{namespace}/{name}"

    def prefix(self, namespace: str | None) -> str:
        """Key prefix of every object of this type (in `namespace` if given)."""
        base = f"{self.storage_group}/{self.plural}/"
        return f"{base}{namespace}/" if namespace else base

    def resource_entry(self) -> list[dict[str, Any]]:
        """APIResourceList entries: the resource and its status subresource."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        subresources = [("status", self.kind)] if self.status_subresource else []
        if self.scale_subresource:
            subresources.append(("scale", "Scale"))
        for subresource, kind in subresources:
            entries.append(
                {
                    "name": f"{self.plural}/{subresource}",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": kind,
                    "verbs": ["get", "patch", "update"],
                    **({"group": "autoscaling", "version": "v1"} if kind == "Scale" else {}),
                }
            )
        return entries


BUILTINS: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",),
                 status_subresource=True),
    ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
    ResourceType("", "v1", "secrets", "secret", "Secret", True),
    ResourceType("", "v1", "services", "service", "Service", True, ("svc",), ("all",),
                 status_subresource=True),
    ResourceType("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",)),
    ResourceType("", "v1", "events", "event", "Event", True, ("ev",)),
    ResourceType("events.k8s.io", "v1", "events", "event", "Event", True, ("ev",),
                 storage_groups=("",)),
    ResourceType("apps", "v1", "deployments", "deployment", "Deployment", True, ("deploy",),
                 ("all",), status_subresource=True, scale_subresource=True),
    ResourceType("", "v1", "pods", "pod", "Pod", True, ("po",), ("all",),
                 status_subresource=True),
    ResourceType("", "v1", "nodes", "node", "Node", False, ("no",), status_subresource=True),
    ResourceType("apps", "v1", "replicasets", "replicaset", "ReplicaSet", True, ("rs",),
                 ("all",), status_subresource=True, scale_subresource=True),
    ResourceType("apps", "v1", "statefulsets", "statefulset", "StatefulSet", True, ("sts",),
                 ("all",), status_subresource=True, scale_subresource=True),
    ResourceType("batch", "v1", "jobs", "job", "Job", True, (), ("all",),
                 status_subresource=True),
    ResourceType("batch", "v1", "cronjobs", "cronjob", "CronJob", True, ("cj",), ("all",),
                 status_subresource=True),
    ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                 "customresourcedefinition", "CustomResourceDefinition", False,
                 ("crd", "crds"), status_subresource=True),
    *(ResourceType("admissionregistration.k8s.io", "v1", f"{kind.lower()}s", kind.lower(), kind,
                   False, categories=("api-extensions",)) for kind in
      ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")),
    *(ResourceType("rbac.authorization.k8s.io", "v1", f"{kind.lower()}s", kind.lower(), kind,
                   kind.startswith("Role")) for kind in
      ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")),
    *(ResourceType(f"{group}.k8s.io", "v1", f"{kind.lower()}s", kind.lower(), kind,
                   kind.startswith("Local"), verbs=("create",)) for group, kind in
      (("authorization", "SelfSubjectAccessReview"), ("authorization", "SubjectAccessReview"),
       ("authorization", "LocalSubjectAccessReview"),
       ("authorization", "SelfSubjectRulesReview"), ("authentication", "TokenReview"),
       ("authentication", "SelfSubjectReview"))),
)  # fmt: skip


def types_from_crd(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The served versions of a stored CRD as resource types (storage version first)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = str(spec.get("group", ""))
    found: list[ResourceType] = []
    storage: Mapping[str, Any] = next(
        (v for v in spec.get("versions") or [] if v.get("storage")), {}
    )
    versions = sorted(
        spec.get("versions") or [], key=lambda v: (not v.get("storage", False), v.get("name"))
    )
    for version in versions:
        if not version.get("served", True):
            continue
        schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or None
        found.append(
            ResourceType(
                group=group,
                version=str(version.get("name")),
                plural=str(names.get("plural", "")),
                singular=str(names.get("singular") or str(names.get("kind", "")).lower()),
                kind=str(names.get("kind", "")),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status_subresource="status" in ((version.get("subresources")) or {}),
                schema=schema,
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                custom=True,
                has_defaults='"default"' in json.dumps(schema or {}),
                schema_revision=int((crd.get("metadata") or {}).get("resourceVersion") or 0),
                storage_version=str(storage.get("name") or ""),
                conversion=spec.get("conversion") or None,
            )
        )
    return found


_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")


def version_order(version: str) -> tuple[int, int, int, str]:
    """A sort key putting versions in upstream's priority order: GA before beta before
    alpha, higher numbers first, then anything else alphabetically (v1 > v1beta2 > v1alpha1
    > v2alpha1 > foo)."""
    found = _VERSION.fullmatch(version)
    if found is None:
        return (3, 0, 0, version)
    major, stage, minor = int(found[1]), found[2], int(found[3] or 0)
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -major, -minor, "")


class Registry:
    """Built-in and CRD-defined types, looked up by (group, version, plural or kind)."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self.refresh(())

    def refresh(self, crds: Iterable[Mapping[str, Any]]) -> None:
        """Serve the built-ins plus every type of `crds` (CRDs being deleted included)."""
        types = {(t.group, t.version, t.plural): t for t in BUILTINS}
        for crd in crds:
            for rtype in types_from_crd(crd):
                types.setdefault((rtype.group, rtype.version, rtype.plural), rtype)
        self._types = types

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served at /{group}/{version}/{plural}, if any."""
        return self._types.get((group, version, plural))

    def by_kind(self, group: str, kind: str) -> ResourceType | None:
        """A type of `group` whose kind is `kind` (used for ownerReference-free lookups)."""
        for rtype in self._types.values():
            if rtype.group == group and rtype.kind == kind:
                return rtype
        return None

    def all_types(self) -> list[ResourceType]:
        """Every served type."""
        return list(self._types.values())

    def storage_types(self) -> list[ResourceType]:
        """One type per storage prefix (events.k8s.io aliases and extra versions dropped)."""
        seen: dict[str, ResourceType] = {}
        for rtype in self._types.values():
            seen.setdefault(rtype.prefix(None), rtype)
        return list(seen.values())

    def groups(self) -> dict[str, list[str]]:
        """Group name -> served versions (core group "" included), preferred first."""
        groups: dict[str, list[str]] = {}
        for rtype in self._types.values():
            versions = groups.setdefault(rtype.group, [])
            if rtype.version not in versions:
                versions.append(rtype.version)
        return {group: sorted(versions, key=version_order) for group, versions in groups.items()}

    def api_versions(self) -> dict[str, Any]:
        """GET /api."""
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}
            ],
        }

    def group_document(self, group: str) -> dict[str, Any] | None:
        """GET /apis/{group} (an APIGroup), or None for an unknown group."""
        versions = self.groups().get(group)
        if not group or not versions:
            return None
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": listed,
            "preferredVersion": listed[0],
        }

    def group_list(self) -> dict[str, Any]:
        """GET /apis (an APIGroupList of every named group)."""
        groups = []
        for group in sorted(g for g in self.groups() if g):
            doc = self.group_document(group)
            assert doc is not None
            doc.pop("kind")
            doc.pop("apiVersion")
            groups.append(doc)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        """GET /api/v1 or /apis/{g}/{v} (an APIResourceList), or None if not served."""
        types = [t for t in self._types.values() if t.group == group and t.version == version]
        if not types:
            return None
        resources: list[dict[str, Any]] = []
        for rtype in sorted(types, key=lambda t: t.plural):
            resources.extend(rtype.resource_entry())
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }
