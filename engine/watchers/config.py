"""Everything a watcher needs besides the kind and the HTTP client, in one frozen value."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.clock import Clock, SystemClock
from engine.watchers.backoff import BackoffPolicy
from engine.watchers.change import Sink
from engine.watchers.resource import Kind
from engine.watchers.watch_state import RestartReason

RestartHook = Callable[[Kind, RestartReason], None]
"""Called (synchronously, must not block) each time a list or watch restarts, for metrics."""


@dataclass(frozen=True)
class WatcherConfig:
    """Settings of one `Watcher`.

    - `sink`: awaited once per change, in order (see `Change`); the watcher does not move
      past a change until the sink returns. A sink that raises makes the watcher back off
      and deliver that change again.
    - `namespaces`: watch only these namespaces (one stream each); empty means all.
    - `label_selector`: Kubernetes label selector text sent on list and watch ("" = all).
    - `resync_period`: seconds between re-deliveries of every cached object as RESYNC
      notices while watching; None turns resync off.
    - `inactivity_limit`: a watch with no line at all (no event, no bookmark) for this many
      seconds is treated as dead and restarted from its last resourceVersion; keep it above
      the server's bookmark interval.
    - `watch_timeout_seconds`: asked of the server; it ends the watch cleanly after that.
    - `request_timeout`: seconds for one LIST page and for connecting a watch.
    - `page_size`: LIST page size (limit/continue).
    - `backoff`, `retry_after_cap`: reconnect delays; a Retry-After is honoured up to the cap.
    - `clock`: wall time for HTTP-date Retry-After, monotonic time for `last_event_monotonic`.
    - `on_restart`: optional metrics hook.
    - `jitter_source`: draws the backoff jitter in [0, 1).
    Errors: `ValueError` for a non-positive period, limit, timeout or page size.
    """

    sink: Sink
    namespaces: tuple[str, ...] = ()
    label_selector: str = ""
    resync_period: float | None = None
    inactivity_limit: float = 120.0
    watch_timeout_seconds: int = 290
    request_timeout: float = 30.0
    page_size: int = 500
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    retry_after_cap: float = 30.0
    clock: Clock = field(default_factory=SystemClock)
    on_restart: RestartHook | None = None
    jitter_source: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        if self.resync_period is not None and self.resync_period <= 0:
            raise ValueError("resync_period must be positive, or None to turn resync off")
        positive = {
            "inactivity_limit": self.inactivity_limit,
            "watch_timeout_seconds": self.watch_timeout_seconds,
            "request_timeout": self.request_timeout,
            "page_size": self.page_size,
            "retry_after_cap": self.retry_after_cap,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"WatcherConfig.{name} must be positive, got {value}")
        if any(not namespace for namespace in self.namespaces):
            raise ValueError("WatcherConfig.namespaces must not contain an empty name")
