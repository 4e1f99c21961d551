"""Which Kubernetes resource a watcher follows: the engine's one `Kind` type."""

from __future__ import annotations

from engine.identity import Kind

__all__ = ["Kind"]
