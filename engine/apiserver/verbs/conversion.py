"""Serve an object stored under one API version through another: core v1 Events and
events.k8s.io/v1 Events share one storage, with their differently named fields mapped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# events.k8s.io/v1 field -> core v1 field
_EVENT_FIELDS = (
    ("note", "message"),
    ("regarding", "involvedObject"),
    ("deprecatedSource", "source"),
    ("deprecatedCount", "count"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("reportingController", "reportingComponent"),
)


def convert(obj: Mapping[str, Any], *, api_version: str) -> dict[str, Any]:
    """`obj` as `api_version` would show it (a new dict; `obj` unchanged)."""
    current = obj.get("apiVersion")
    result = dict(obj)
    result["apiVersion"] = api_version
    if obj.get("kind") != "Event" or current == api_version:
        return result
    to_core = api_version == "v1"
    for new_name, core_name in _EVENT_FIELDS:
        source, dest = (new_name, core_name) if to_core else (core_name, new_name)
        if source in result:
            result[dest] = result.pop(source)
    return result
