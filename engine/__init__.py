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
    from engine.runtime.manager.settings import Settings, load_settings
    from engine.runtime.reconcile.admission import (
        AdmissionRequest,
        Rejected,
        ServedVersion,
        UserInfo,
    )
    from engine.runtime.reconcile.handler_context import Context
    from engine.runtime.reconcile.operator import ChildKind, CustomResource, Operator

_HOMES = {
    "AdmissionRequest": "engine.runtime.reconcile.admission",
    "ChildKind": "engine.runtime.reconcile.operator",
    "Context": "engine.runtime.reconcile.handler_context",
    "CustomResource": "engine.runtime.reconcile.operator",
    "Operator": "engine.runtime.reconcile.operator",
    "PermanentError": "engine.effects.errors",
    "Rejected": "engine.runtime.reconcile.admission",
    "RetryableError": "engine.effects.errors",
    "ServedVersion": "engine.runtime.reconcile.admission",
    "Settings": "engine.runtime.manager.settings",
    "UserInfo": "engine.runtime.reconcile.admission",
    "load_settings": "engine.runtime.manager.settings",
    "run": "engine.hosting",
}
"""Public name → the internal module that holds it (the only place they are named)."""

__all__ = [
    "AdmissionRequest",
    "ChildKind",
    "Context",
    "CustomResource",
    "Operator",
    "PermanentError",
    "Rejected",
    "RetryableError",
    "ServedVersion",
    "Settings",
    "UserInfo",
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
