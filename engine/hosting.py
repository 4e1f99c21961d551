"""Hosting an operator: a `Controller` for it, and `run`, the public coroutine that runs
one until it is cancelled or the process is signalled.

The one module (besides the public `engine` names) that reaches into the runtime's
composition, so that tools above it (the CLI, the test kit) name no runtime internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from typing import Any

from engine import Operator, Settings, load_settings
from engine.clock import Clock, SystemClock
from engine.journal.store import Journal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.telemetry.metrics import EngineMetrics
from engine.telemetry.setup import TracingHandle


def build_controller(
    operator: Operator,
    *,
    settings: Settings,
    api_client: Any = None,
    journal: Journal | None = None,
    clock: Clock | None = None,
    metrics: EngineMetrics | None = None,
    tracing: TracingHandle | None = None,
    serve_health: bool = True,
    handle_signals: bool = False,
) -> Controller:
    """A `Controller` for `operator` (not started: call `run()` on it).

    `api_client` None: connect from `settings`; `journal` None: open
    `<settings.state_dir>/journal.db`.
    """
    return Controller(
        ControllerDeps(
            operator=operator,
            settings=settings,
            api_client=api_client,
            journal=journal,
            clock=clock or SystemClock(),
            metrics=metrics,
            tracing=tracing,
            serve_health=serve_health,
            handle_signals=handle_signals,
        )
    )


async def run(operator: Operator, settings: Settings | None = None) -> None:
    """Run `operator` until this coroutine is cancelled or SIGTERM/SIGINT arrives.

    `settings` None: the defaults overlaid by `ENGINE_*` environment variables. Signals
    are handled only when called on the main thread. On cancellation the engine stops
    gracefully (watches, then in-flight reconciles, then the journal) before the
    `CancelledError` propagates. Errors: the start-up errors of the Controller (an
    unreachable cluster, an unusable journal), each naming what to do.
    """
    chosen = settings if settings is not None else load_settings(env=os.environ, overrides={})
    controller = build_controller(
        operator,
        settings=chosen,
        handle_signals=threading.current_thread() is threading.main_thread(),
    )
    running = asyncio.create_task(controller.run(), name="engine")
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        await controller.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        raise
