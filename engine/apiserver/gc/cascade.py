"""What else goes when an object is removed: a CRD takes its custom resources with it,
a Namespace takes every object inside it."""

from __future__ import annotations

from typing import Any

from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.store.resource_types import CRD_KEY_PREFIX, types_from_crd
from engine.apiserver.store.storage import Write

NAMESPACE_KEY_PREFIX = "/namespaces//"


def removal_writes(ctx: ApiContext, key: str, last: dict[str, Any]) -> list[Write]:
    """The writes that remove `key` (last state `last`) and everything it contains."""
    expect = int(ctx.store.get(key)["metadata"]["resourceVersion"])  # type: ignore[index]
    writes = [Write(key, last, expect, delete=True)]
    prefixes: list[str] = []
    if key.startswith(CRD_KEY_PREFIX):
        prefixes = [t.prefix(None) for t in types_from_crd(last)[:1]]
    elif key.startswith(NAMESPACE_KEY_PREFIX):
        namespace = key[len(NAMESPACE_KEY_PREFIX) :]
        prefixes = [t.prefix(namespace) for t in ctx.registry.storage_types() if t.namespaced]
    for prefix in prefixes:
        for child_key, child in ctx.store.items(prefix):
            rv = int(child["metadata"]["resourceVersion"])
            writes.append(Write(child_key, None, rv, delete=True))
    return writes
