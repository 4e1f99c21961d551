"""Idempotency keys of effects: `<uid>:<generation>:<name>[:<n>]`, derived from cluster state."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

PROVISION: Final = "provision"
"""Name of the effect that runs the operator's provision handler."""
FINALIZE: Final = "finalize"
"""Name of the effect that runs the operator's finalize (cleanup) handler."""

_NAME = re.compile(r"^[a-z0-9]([a-z0-9.\-_]*[a-z0-9])?$")


def effect_key(uid: str, generation: int, name: str, n: int | None = None) -> str:
    """The idempotency key of effect `name` for object `uid` at `generation`.

    `n` tells apart repeated rounds of the same step within one generation (a drift
    repair or a healing re-run); round 0 and None give the same key, without a suffix.
    Errors: `ValueError` for an empty uid, a negative generation or round, or a name
    outside lowercase letters, digits, '-', '_' and '.'.
    """
    if not uid or ":" in uid:
        raise ValueError(f"effect key needs a uid without ':', got {uid!r}")
    if generation < 0:
        raise ValueError(f"effect key needs a generation >= 0, got {generation}")
    if not _NAME.match(name):
        raise ValueError(f"effect name {name!r} must be lowercase letters, digits, '-', '_' or '.'")
    if n is None or n == 0:
        return f"{uid}:{generation}:{name}"
    if n < 0:
        raise ValueError(f"effect round must be >= 0, got {n}")
    return f"{uid}:{generation}:{name}:{n}"


@dataclass(frozen=True, slots=True)
class KeyParts:
    """The parts of a key made by `effect_key`."""

    uid: str
    generation: int
    name: str
    n: int


def parse_key(key: str) -> KeyParts | None:
    """The parts of a key made by `effect_key`, or None for any other string."""
    parts = key.split(":")
    if len(parts) not in (3, 4) or not parts[1].isdigit():
        return None
    if len(parts) == 4 and not parts[3].isdigit():
        return None
    n = int(parts[3]) if len(parts) == 4 else 0
    return KeyParts(uid=parts[0], generation=int(parts[1]), name=parts[2], n=n)


def key_generation(key: str) -> int | None:
    """`parse_key(key).generation`, or None where `parse_key` gives None; without making
    the parts (fold asks it of every new effect)."""
    parts = key.split(":")
    count = len(parts)
    if count == 3:
        return int(parts[1]) if parts[1].isdigit() else None
    if count == 4 and parts[1].isdigit() and parts[3].isdigit():
        return int(parts[1])
    return None
