"""Calling an operator's webhook handler: sync or async, under a deadline, off the loop.

An `async def` handler (or an object with an async `__call__`) is awaited; a plain
function runs in a worker thread, so a slow one never blocks the engine's event loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


class HandlerTimeout(Exception):
    """The handler did not answer within its deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"did not answer within {seconds:g} s")
        self.seconds = seconds


def is_async(handler: Callable[..., Any]) -> bool:
    call = getattr(handler, "__call__", None)  # noqa: B004 - an object's async __call__
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


async def call_handler(handler: Callable[..., Any], argument: Any, *, deadline: float) -> Any:
    """`handler(argument)`'s result. Errors: `HandlerTimeout` past `deadline` seconds; what
    the handler raises, unchanged."""
    try:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can return the result of a
        # call that finished as a cancellation arrived, and the cancellation is lost
        async with asyncio.timeout(deadline):
            if is_async(handler):
                return await handler(argument)
            result = await asyncio.to_thread(handler, argument)
            if inspect.isawaitable(result):  # a plain function returning a coroutine
                return await result
            return result
    except TimeoutError:
        raise HandlerTimeout(deadline) from None
