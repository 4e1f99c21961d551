"""The event loop `engine apiserver` runs on: uvloop (libuv's loop, with cheaper socket
writes, reads and timers than asyncio's own on this server's request path), or asyncio's
own when `ENGINE_APISERVER_LOOP=asyncio` (to compare the two, or where uvloop is absent).
The embedded server inside another program runs on that program's loop."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
VARIABLE = "ENGINE_APISERVER_LOOP"


class LoopChoiceError(ValueError):
    """`ENGINE_APISERVER_LOOP` names no loop this server can run on."""


def loop_factory(env: Mapping[str, str] | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    """The factory of the loop chosen by `ENGINE_APISERVER_LOOP` (default uvloop when it
    is installed). Errors: LoopChoiceError naming the variable and what it may be."""
    chosen = (os.environ if env is None else env).get(VARIABLE, "").strip().lower()
    if chosen == "asyncio" or (not chosen and importlib.util.find_spec("uvloop") is None):
        return asyncio.new_event_loop
    if chosen not in ("", "uvloop"):
        raise LoopChoiceError(f"{VARIABLE}={chosen!r}: use 'uvloop' or 'asyncio'")
    import uvloop

    return uvloop.new_event_loop


def run_on_chosen_loop(main: Coroutine[Any, Any, T], env: Mapping[str, str] | None = None) -> T:
    """`asyncio.run(main)` on the chosen loop."""
    try:
        factory = loop_factory(env)
    except LoopChoiceError:
        main.close()
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
