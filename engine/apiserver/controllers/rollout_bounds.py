"""A Deployment's rolling-update bounds: maxSurge and maxUnavailable as Pod counts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def resolve_bound(value: Any, total: int, *, round_up: bool) -> int:
    """An int-or-percent field (maxSurge, maxUnavailable) as a count of `total`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return max(0, value)
    text = str(value or "0").strip()
    if text.endswith("%"):
        share = total * float(text[:-1] or 0) / 100
        return max(0, math.ceil(share) if round_up else math.floor(share))
    return max(0, int(text)) if text.isdigit() else 0


def bounds(deployment: Mapping[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as counts; both 0 would stall, so unavailable becomes 1."""
    spec = deployment.get("spec") or {}
    desired = int(spec.get("replicas", 1))
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    surge = resolve_bound(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = resolve_bound(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable
