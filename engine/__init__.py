"""An event-sourced reconciliation engine for Kubernetes operators.

The public API is what this module exports (`from engine import Operator, run, ...`);
every other module is internal and may change. Names are imported on first use, so
`import engine` stays cheap (the CLI imports it for the version alone).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from engine.effects.errors import PermanentError, RetryableError
    from engine.hosting import run
    from engine.runtime.context import Context
    from engine.runtime.operator import ChildKind, CustomResource, Operator
    from engine.runtime.settings import Settings, load_settings

_HOMES = {
    "ChildKind": "engine.runtime.operator",
    "Context": "engine.runtime.context",
    "CustomResource": "engine.runtime.operator",
    "Operator": "engine.runtime.operator",
    "PermanentError": "engine.effects.errors",
    "RetryableError": "engine.effects.errors",
    "Settings": "engine.runtime.settings",
    "load_settings": "engine.runtime.settings",
    "run": "engine.hosting",
}
"""Public name → the internal module that holds it (the only place they are named)."""

__all__ = [
    "ChildKind",
    "Context",
    "CustomResource",
    "Operator",
    "PermanentError",
    "RetryableError",
    "Settings",
    "__version__",
    "load_settings",
    "run",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
