"""Reconnect delays: exponential backoff with jitter (client-go's watch defaults) and the
server's Retry-After (read by the one parser the effect writer uses), both pure."""

from __future__ import annotations

from dataclasses import dataclass

from engine.effects.backoff import retry_after_seconds

__all__ = ["BackoffPolicy", "retry_after_seconds"]


@dataclass(frozen=True)
class BackoffPolicy:
    """Delays grow ``initial * factor**attempt`` up to `cap`; jitter adds up to
    ``jitter * delay`` on top, and the result never exceeds `cap`.

    Defaults follow client-go's reflector (0.8 s initial, factor 2, jitter 1.0, 30 s cap).
    Errors: `ValueError` for a non-positive initial or cap, factor < 1 or negative jitter.
    """

    initial: float = 0.8
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.cap <= 0:
            raise ValueError("backoff initial and cap must be positive")
        if self.factor < 1 or self.jitter < 0:
            raise ValueError("backoff factor must be >= 1 and jitter >= 0")

    def delay(self, attempt: int, unit: float) -> float:
        """The delay before retry number `attempt` (0-based), given `unit` drawn from [0, 1).

        Guarantees: ``min(initial, cap) <= delay <= cap``; non-decreasing in `attempt` for a
        fixed `unit`.
        """
        exponent = min(max(attempt, 0), 64)
        base = min(self.initial * self.factor**exponent, self.cap)
        return min(base * (1.0 + self.jitter * min(max(unit, 0.0), 1.0)), self.cap)
