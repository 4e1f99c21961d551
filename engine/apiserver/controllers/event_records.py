"""Kubernetes Events as the controllers record them (core v1, one per occurrence)."""

from __future__ import annotations

import secrets
from typing import Any

from engine.apiserver.controllers.actions import EventNote


def event_body(note: EventNote, *, now: str, created_name: str = "") -> dict[str, Any]:
    """The Event for `note`; "{name}" in its message becomes `created_name`."""
    involved = note.involved
    meta = involved.get("metadata") or {}
    name = str(meta.get("name", ""))
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{secrets.token_hex(8)}"},
        "involvedObject": {
            "apiVersion": str(involved.get("apiVersion", "")),
            "kind": str(involved.get("kind", "")),
            "name": name,
            "namespace": str(meta.get("namespace", "")),
            "uid": str(meta.get("uid", "")),
            "resourceVersion": str(meta.get("resourceVersion", "")),
        },
        "reason": note.reason,
        "message": note.message.replace("{name}", created_name),
        "type": note.type,
        "source": {"component": note.component},
        "reportingComponent": note.component,
        "reportingInstance": "engine-apiserver",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
