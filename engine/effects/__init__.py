"""Effects: named async calls under idempotency keys, backoff, and replay mode."""

from engine.effects.backoff import Backoff, BackoffPolicy, ceiling, jitter, next_delay
from engine.effects.errors import (
    EffectError,
    EffectFailedPermanently,
    EffectGaveUp,
    EffectRetryScheduled,
    PermanentError,
    ReplayDivergence,
    RetryableError,
    ServerUnavailable,
)
from engine.effects.runner import (
    AttemptTracer,
    EffectCall,
    EffectRunner,
    Mode,
    RunnerDeps,
    SpanIds,
)
from engine.fsm.key import effect_key

__all__ = [
    "AttemptTracer",
    "Backoff",
    "BackoffPolicy",
    "EffectCall",
    "EffectError",
    "EffectFailedPermanently",
    "EffectGaveUp",
    "EffectRetryScheduled",
    "EffectRunner",
    "Mode",
    "PermanentError",
    "ReplayDivergence",
    "RetryableError",
    "RunnerDeps",
    "ServerUnavailable",
    "SpanIds",
    "ceiling",
    "effect_key",
    "jitter",
    "next_delay",
]
