"""Python's garbage collector while `engine run` starts, and after.

A start on a large cluster builds a heap that stays: the modules, then every listed
object in the watches' caches, the views and the observation log. The first list
allocates enough containers to run the collector over a thousand times, each full
collection walking everything built so far (10,000 Sites: about 1,300 collections,
2.6 s of CPU before the first reconcile, a third of the start). So `engine run` pauses
the collector from its start until the controller is ready (every watch listed, the
in-flight work queued, the workers running), then freezes what the start built (moved
to the permanent generation: later collections skip it) and turns the collector back
on. Objects freed by their reference count are freed as ever; only reference cycles
made during the start wait, and they are bounded by the start itself.

Before that, the imports of the command's modules and of the operator run with the
collector off too (`paused`): they build modules, classes and functions that stay, and
the hundred or so collections they would trigger find nothing to free.

Once running, the youngest generation is collected every `STEADY_THRESHOLD` net
allocations of containers instead of Python's 700: a reconcile allocates a few thousand
(decoded answers, journal rows, spans, log records), nearly all freed by their reference
count before a collection would look at them, and at 700 the collections themselves cost
about a twentieth of the engine's CPU at 1,000 resources. Cycles wait a little longer.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

STEADY_THRESHOLD: Final = 10_000
"""Net container allocations between collections of the youngest generation, once
running (the older generations keep their own thresholds)."""


@contextmanager
def paused() -> Iterator[None]:
    """The collector off inside the block (for imports), then on again if it was on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class StartCollector:
    """`pause()` at the start, `resume()` once ready (or on the way out); `resume()`
    acts once, and only if `pause()` turned the collector off (a caller that runs with
    the collector already off keeps it off). `resume()` raises the youngest
    generation's threshold to `STEADY_THRESHOLD` (never lowers it)."""

    def __init__(self) -> None:
        self._paused = False

    def pause(self) -> None:
        if gc.isenabled():
            gc.disable()
            self._paused = True

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            gc.freeze()
            young, middle, old = gc.get_threshold()
            gc.set_threshold(max(young, STEADY_THRESHOLD), middle, old)
            gc.enable()
