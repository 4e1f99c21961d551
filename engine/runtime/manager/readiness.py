"""What /readyz reports beyond "caches synced": whether the engine can safely act now.

Three probes run in the background, each on the monotonic clock: the journal can commit
(a write transaction rolled back, `SqliteJournal.probe_commit`, bounded by a timeout: a
full disk, a read-only file or a blocked writer fail it), the API server answers
(`GET /version`; failing only once no answer came for `api_unreachable_seconds`), and
it serves the operator's kind (a LIST of one item; a 404 means its
CustomResourceDefinition is gone). The probes' results are read synchronously by the
health checks; each recovers on its own as soon as the cause clears. Leadership is read
from the elector directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from engine.clock import Clock
from engine.watchers import Kind, KubeResources

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProbeTiming:
    """How often the probes run (`period`), how long one may take (`timeout`), and how
    long the API server may stay silent before readiness drops (`unreachable_after`)."""

    period: float = 1.0
    timeout: float = 2.0
    unreachable_after: float = 10.0


class JournalCommits:
    """Whether the journal could commit at its last probe (True before the first)."""

    def __init__(self, probe: Callable[[], Awaitable[None]] | None, timing: ProbeTiming) -> None:
        self._probe = probe
        self._timing = timing
        self.ok = True

    async def run(self) -> None:
        """Probe every period until cancelled."""
        if self._probe is None:
            return  # a journal with no probe (PostgreSQL) reports its failures on append
        while True:
            try:
                async with asyncio.timeout(self._timing.timeout):  # cancellation never lost
                    await self._probe()
                ok = True
            except Exception as error:  # any failure to commit is "cannot commit"
                ok = False
                if self.ok:
                    log.warning("readiness: the journal cannot commit (%s)", error)
            if ok and not self.ok:
                log.info("readiness: the journal commits again")
            self.ok = ok
            await asyncio.sleep(self._timing.period)


class ApiReachability:
    """Whether the API server answered within the last `unreachable_after` seconds."""

    def __init__(
        self, probe: Callable[[], Awaitable[object]], timing: ProbeTiming, clock: Clock
    ) -> None:
        self._probe = probe
        self._timing = timing
        self._clock = clock
        self._last_answer = clock.monotonic()

    def reachable(self) -> bool:
        silent = self._clock.monotonic() - self._last_answer
        return silent <= self._timing.unreachable_after

    async def run(self) -> None:
        """Probe every period until cancelled."""
        while True:
            was = self.reachable()
            try:
                async with asyncio.timeout(self._timing.timeout):  # cancellation never lost
                    await self._probe()
                self._last_answer = self._clock.monotonic()
            except Exception as error:  # no answer: the silence grows
                if was and not self.reachable():
                    log.warning("readiness: the API server has not answered (%s)", error)
            if not was and self.reachable():
                log.info("readiness: the API server answers again")
            await asyncio.sleep(self._timing.period)


async def kind_served(resources: KubeResources, kind: Kind, *, seconds: float) -> bool:
    """Whether the API server serves `kind`: its group version's discovery document
    lists it (a request of its own path, so it is never taken for a retry of the watch's
    lists). Errors: any failure of the request."""
    return await resources.serves(kind, request_timeout=seconds)


class KindServed:
    """Whether the API server served the operator's kind at its last probe (True before
    the first). A probe with no answer leaves it as it was: that is for
    `ApiReachability` to report."""

    def __init__(
        self, probe: Callable[[], Awaitable[bool]], timing: ProbeTiming, what: str
    ) -> None:
        self._probe = probe
        self._timing = timing
        self._what = what
        self.ok = True

    async def run(self) -> None:
        """Probe every period until cancelled."""
        while True:
            served = self.ok
            try:
                async with asyncio.timeout(self._timing.timeout):  # cancellation never lost
                    served = await self._probe()
            except Exception:  # no answer: not this check's to judge
                pass
            if self.ok and not served:
                log.warning(
                    "readiness: the API server does not serve %s (404): its "
                    "CustomResourceDefinition is missing; the engine waits, and goes on "
                    "once it is created again",
                    self._what,
                )
            if served and not self.ok:
                log.info("readiness: the API server serves %s again", self._what)
            self.ok = served
            await asyncio.sleep(self._timing.period)
