"""The operator's handler code version: what every record a reconcile writes carries, so
a journal tells which code wrote each of its records (docs/upgrades.md).

Declared on the `Operator` (`code_version="2"`), or by default a short sha256 of the
source of its handlers and of the modules defining them: stable across runs and
processes, and different as soon as a handler's text changes.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable
from typing import Any

CODE_VERSION_FIELD = "code_version"
"""The payload field of every resource-stream record that holds the code version."""

_DIGITS = 12


@functools.cache
def handlers_source_version(*handlers: Callable[..., Any] | None) -> str:
    """A short hex digest of `handlers`' source and of their modules' source (a handler
    whose source cannot be read, a builtin say, counts by its qualified name)."""
    digest = hashlib.sha256()
    modules: dict[str, str] = {}
    for handler in handlers:
        if handler is None:
            digest.update(b"\0none")
            continue
        digest.update(b"\0" + _source(handler).encode())
        module = inspect.getmodule(handler)
        if module is not None and module.__name__ not in modules:
            modules[module.__name__] = _source(module)
    for name in sorted(modules):
        digest.update(b"\0" + name.encode() + b"\0" + modules[name].encode())
    return digest.hexdigest()[:_DIGITS]


def _source(thing: Any) -> str:
    try:
        return inspect.getsource(thing)
    except (OSError, TypeError):
        return f"{getattr(thing, '__module__', '')}.{getattr(thing, '__qualname__', repr(thing))}"
