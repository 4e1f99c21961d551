"""A Chore (the shard bench's kind) as the watch delivers it: one object, `default/c-1`."""

from __future__ import annotations

from typing import Any

from engine.bench.shard_operator import CHORE


def chore(version: int, generation: int) -> dict[str, Any]:
    """Chore `default/c-1` (uid `u-1`) at resourceVersion `version` and `generation`."""
    return {
        "apiVersion": CHORE.api_version,
        "kind": CHORE.kind,
        "metadata": {"name": "c-1", "namespace": "default", "uid": "u-1",
                     "resourceVersion": str(version), "generation": generation},
        "spec": {"round": generation},
    }  # fmt: skip
