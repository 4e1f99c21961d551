"""What every request handler needs: the store, the registry, the settings and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from engine.apiserver.store.resource_types import Registry
from engine.apiserver.store.storage import Store

if TYPE_CHECKING:
    from engine.apiserver.admission.dispatcher import Webhooks


@dataclass(frozen=True)
class Settings:
    """Tunables: change-log retention (entries), bookmark interval, GC debounce and the
    interval between the collector's full passes over every object (s)."""

    retention: int = 10_000
    bookmark_interval: float = 5.0
    gc_debounce: float = 0.005
    gc_full_interval: float = 30.0


def utc_now() -> datetime:
    """The wall clock in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ApiContext:
    """The server's shared parts; the store and registry are the only mutable ones.

    `webhooks` calls the admission and conversion webhooks (None: none are called)."""

    store: Store
    registry: Registry
    settings: Settings
    now: Callable[[], datetime] = utc_now
    webhooks: Webhooks | None = None
