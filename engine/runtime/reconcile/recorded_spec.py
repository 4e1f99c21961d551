"""The spec an earlier generation was provisioned with, rebuilt from the journal.

An effect cut off by a crash is re-run under its own key (docs/guarantees.md, R4), and
its callee must then receive the same request: the spec of the key's generation, not a
newer one observed since (R3). The journal holds each observed spec with its secret
fields redacted, so secrets are taken from the live object; a spec too large to journal
in full cannot be rebuilt.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.fsm import events as ev
from engine.journal.codec import REDACTED
from engine.journal.record import Record


def spec_at_generation(records: Iterable[Record], generation: int) -> dict[str, Any] | None:
    """The last spec journaled in an `Observed` record of `generation`, if there is one
    in full (None when none was journaled or it was stored as an excerpt)."""
    found: dict[str, Any] | None = None
    for record in records:
        if record.type != ev.OBSERVED or record.data.get("generation") != generation:
            continue
        spec = record.data.get("spec")
        found = copy.deepcopy(dict(spec)) if isinstance(spec, Mapping) else None
    return found


def restore_secrets(
    recorded: Mapping[str, Any], live: Mapping[str, Any], secret_fields: Sequence[str]
) -> dict[str, Any]:
    """`recorded` (a spec) with each redacted secret field (`spec.<path>`) taken from the
    live spec; a secret the live spec no longer has is left out."""
    spec = copy.deepcopy(dict(recorded))
    for field in secret_fields:
        parts = field.split(".")
        if parts[0] != "spec" or len(parts) < 2:
            continue
        _restore(spec, live, parts[1:])
    return spec


def _restore(spec: dict[str, Any], live: Mapping[str, Any], path: list[str]) -> None:
    node: Any = spec
    source: Any = live
    for name in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(name), dict):
            return
        node = node[name]
        source = source.get(name) if isinstance(source, Mapping) else None
    last = path[-1]
    if node.get(last) != REDACTED:
        return
    if isinstance(source, Mapping) and last in source:
        node[last] = copy.deepcopy(source[last])
    else:
        del node[last]
