"""Which operator a replay runs: `--operator module:attribute`, loaded and checked."""

from __future__ import annotations

import importlib
import logging

from engine.runtime.operator import Operator

_log = logging.getLogger("engine.replay")


def load_operator(reference: str) -> Operator:
    """The `Operator` at `module:attribute`: an Operator value, or a function of no
    arguments that returns one. Errors: `ValueError` naming what is wrong."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--operator {reference!r} should look like package.module:attribute")
    try:
        module = importlib.import_module(module_name)
    except ImportError as bad:
        raise ValueError(f"--operator: cannot import {module_name!r}: {bad}") from None
    value = getattr(module, attribute, None)
    if value is None:
        raise ValueError(f"--operator: {module_name!r} has no attribute {attribute!r}")
    if callable(value) and not isinstance(value, Operator):
        value = value()
    if not isinstance(value, Operator):
        raise ValueError(f"--operator {reference!r} is not an Operator (nor makes one)")
    return value
