"""OpenAPI v3 documents: the index at /openapi/v3 and one document per group-version.

Each resource's collection `post` and item `put`/`patch` carry
`x-kubernetes-group-version-kind` and a `fieldValidation` parameter, which is what makes
kubectl leave validation to the server. CRD schemas go under components.schemas.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from engine.apiserver.schema import builtin
from engine.apiserver.store.resource_types import Registry, ResourceType

_FIELD_VALIDATION = {
    "name": "fieldValidation",
    "in": "query",
    "description": "Ignore, Warn or Strict handling of unknown or duplicate fields.",
    "schema": {"type": "string", "uniqueItems": True},
}
_DRY_RUN = {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}}
_FIELD_MANAGER = {
    "name": "fieldManager",
    "in": "query",
    "schema": {"type": "string", "uniqueItems": True},
}


def gv_path(group: str, version: str) -> str:
    """The index key of a group-version: "api/v1" or "apis/{group}/{version}"."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def schema_name(rtype: ResourceType) -> str:
    """The components.schemas name, like the real server's (reversed group)."""
    upstream = None if rtype.custom else _builtin_name(rtype)
    if upstream is not None:
        return upstream
    reversed_group = (
        ".".join(reversed(rtype.group.split("."))) if rtype.group else "io.k8s.api.core"
    )
    return f"{reversed_group}.{rtype.version}.{rtype.kind}"


def _builtin_name(rtype: ResourceType) -> str | None:
    return builtin.definition_name(rtype.group, rtype.version, rtype.kind)


def _operation(
    rtype: ResourceType, action: str, *, write: bool, schema: str | None = None
) -> dict[str, Any]:
    gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
    ref = {"$ref": f"#/components/schemas/{schema or schema_name(rtype)}"}
    operation: dict[str, Any] = {
        "operationId": f"{action}{rtype.kind}",
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": ref}}}
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if write:
        operation["parameters"] = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
        operation["requestBody"] = {"content": {"*/*": {"schema": ref}}, "required": True}
    return operation


def _paths(rtype: ResourceType) -> dict[str, Any]:
    base = f"/{gv_path(rtype.group, rtype.version)}"
    collection = (
        f"{base}/namespaces/{{namespace}}/{rtype.plural}"
        if rtype.namespaced
        else f"{base}/{rtype.plural}"
    )
    item = f"{collection}/{{name}}"
    paths: dict[str, Any] = {
        collection: {
            "get": _operation(rtype, "list", write=False),
            "post": _operation(rtype, "post", write=True),
            "delete": _operation(rtype, "deletecollection", write=False),
        },
        item: {
            "get": _operation(rtype, "get", write=False),
            "put": _operation(rtype, "put", write=True),
            "patch": _operation(rtype, "patch", write=True),
            "delete": _operation(rtype, "delete", write=False),
        },
    }
    if rtype.status_subresource:
        paths[f"{item}/status"] = {
            "get": _operation(rtype, "get", write=False),
            "put": _operation(rtype, "put", write=True),
            "patch": _operation(rtype, "patch", write=True),
        }
    if rtype.scale_subresource:
        scale = builtin.definition_name("autoscaling", "v1", "Scale")
        paths[f"{item}/scale"] = {
            "get": _operation(rtype, "get", write=False, schema=scale),
            "put": _operation(rtype, "put", write=True, schema=scale),
            "patch": _operation(rtype, "patch", write=True, schema=scale),
        }
    return paths


def _schema(rtype: ResourceType) -> dict[str, Any]:
    gvk = [{"group": rtype.group, "version": rtype.version, "kind": rtype.kind}]
    if rtype.schema is not None:
        return {**rtype.schema, "x-kubernetes-group-version-kind": gvk}
    return {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "x-kubernetes-group-version-kind": gvk,
    }


def group_version_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document of one group-version, or None if it is not served."""
    types = [t for t in registry.all_types() if t.group == group and t.version == version]
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rtype in sorted(types, key=lambda t: t.plural):
        paths.update(_paths(rtype))
        upstream = None if rtype.custom else _builtin_name(rtype)
        if upstream is None:
            schemas[schema_name(rtype)] = _schema(rtype)
            continue
        names = builtin.references(upstream)
        if rtype.scale_subresource:
            names |= builtin.references(str(builtin.definition_name("autoscaling", "v1", "Scale")))
        for name in names:
            schemas[name] = builtin.component_schemas()[name]
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _digest(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=64)
def _builtin_digest(registry: Registry, group: str, version: str, plurals: tuple[str, ...]) -> str:
    """The digest of a group-version served by built-in types only: it changes only with
    the set of types (the built-in schemas are large, and every kubectl run asks)."""
    return _digest(group_version_document(registry, group, version))


def index_document(registry: Registry) -> dict[str, Any]:
    """GET /openapi/v3: each group-version's document URL, with a content hash."""
    paths: dict[str, Any] = {}
    for group, versions in sorted(registry.groups().items()):
        for version in versions:
            types = [t for t in registry.all_types() if t.group == group and t.version == version]
            if any(t.custom for t in types):
                digest = _digest(group_version_document(registry, group, version))
            else:
                plurals = tuple(sorted(t.plural for t in types))
                digest = _builtin_digest(registry, group, version, plurals)
            path = gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest.upper()}"}
    return {"paths": paths}
