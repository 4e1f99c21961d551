"""Leader election on a coordination.k8s.io/v1 Lease, with a fencing term.

One replica leads; the others stand by. The term (fencing token) is the Lease's
`spec.leaseTransitions` after this replica's acquisition, and grows with every
acquisition. `is_leader` turns False the moment the renew deadline passes without a
renewal: check it before each effect. A graceful stop releases the Lease, so a standby
takes over within one retry period. docs/supervisor.md says why this is not
`kubernetes_asyncio.leaderelection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.clock import Clock, SystemClock
from engine.effects.kube_client import ApiException, CoordinationV1Api

logger = logging.getLogger(__name__)


def default_identity() -> str:
    """`<hostname>_<random>`: unique per process, so a restarted pod never passes for
    its former self (which would let it skip a term)."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True, slots=True)
class LeaderElectionConfig:
    """Every setting of one elector (defaults as client-go: 15 s / 10 s / 2 s).

    `lease_duration`: how long a standby waits, after it last saw the Lease change,
    before it takes the Lease over; `renew_deadline`: how long the leader keeps leading
    without a successful renewal; `retry_period`: the interval between attempts.
    `release_on_cancel`: release the Lease when `run()` is cancelled (graceful stop).
    Errors: `ValueError` unless lease_duration > renew_deadline > retry_period > 0.
    """

    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.name or not self.namespace or not self.identity:
            raise ValueError("leader election needs a Lease name, a namespace and an identity")
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError(
                "leader election needs lease_duration > renew_deadline > retry_period > 0, got "
                f"{self.lease_duration:g} / {self.renew_deadline:g} / {self.retry_period:g}"
            )


@dataclass(frozen=True, slots=True)
class _Seen:
    """The Lease as last read: its version, holder and transitions."""

    resource_version: str
    holder: str
    transitions: int


class LeaderElector:
    """Competes for the Lease and keeps it while leading.

    Expected flow: `task = asyncio.create_task(elector.run())`; `await
    elector.leading.wait()`; before each effect check `elector.is_leader` and pass
    `elector.term` along; on shutdown cancel the task (the Lease is released when
    `release_on_cancel`) or `await elector.release()`.

    Guarantees: every acquisition makes `term` larger than any term this replica has
    seen on the Lease (also after the Lease was deleted and re-created); writes carry the
    resourceVersion read, so two candidates never both win (409 → read again); a leader
    whose renewal fails, or who finds another holder or no Lease, stops leading, then
    competes again. `on_started_leading(term)` and `on_stopped_leading()` are called on
    the loop, synchronously (start tasks from them, do not block); `leading` is set while
    leading and `not_leading` while not. Those flags follow the loop; `is_leader` also
    follows the clock, so it is False past the renew deadline even while a request hangs.
    """

    def __init__(
        self,
        api_client: Any,
        config: LeaderElectionConfig,
        *,
        clock: Clock | None = None,
        on_started_leading: Callable[[int], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
    ) -> None:
        # typed Any: the bodies are plain dicts, which the client serialises as they are
        self._api: Any = CoordinationV1Api(api_client)
        self._config = config
        self._clock = clock or SystemClock()
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self.leading = asyncio.Event()
        self.not_leading = asyncio.Event()
        self.not_leading.set()
        self._term: int | None = None
        self._highest_term = 0
        self._valid_until = float("-inf")
        self._seen: _Seen | None = None
        self._seen_at = float("-inf")
        self._acquired_at = ""

    @property
    def config(self) -> LeaderElectionConfig:
        return self._config

    def seed(self, *, resource_version: str, holder: str, transitions: int, at: float) -> None:
        """Start from what another reader of the Lease saw: version `resource_version`,
        first seen at `at` (this elector's monotonic clock). A Lease that has not changed
        since is then taken over one lease duration after `at`, not after this elector's
        own first read. Call before `run()`."""
        self._seen = _Seen(resource_version, holder, transitions)
        self._seen_at = at
        self._highest_term = max(self._highest_term, transitions)

    def know_term(self, term: int) -> None:
        """`term` was used already (the journal's highest): every acquisition takes a
        higher one, even when the Lease reads lower (restored from a backup)."""
        self._highest_term = max(self._highest_term, term)

    @property
    def is_leader(self) -> bool:
        """True while leading and within the renew deadline of the last renewal."""
        return self.leading.is_set() and self._clock.monotonic() < self._valid_until

    @property
    def term(self) -> int | None:
        """The fencing term of the current (or last) leadership; None before the first."""
        return self._term

    async def run(self) -> None:
        """Compete, lead, renew; forever, until cancelled (then release if configured)."""
        try:
            while True:
                if self.leading.is_set():
                    await self._renew_until_lost()
                else:
                    if await self._attempt(acquiring=True):
                        continue
                    await asyncio.sleep(self._until_next_attempt())
        except asyncio.CancelledError:
            if self._config.release_on_cancel and self.leading.is_set():
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.release())
            self._step_down("stopped")
            raise

    async def release(self) -> None:
        """Stop leading, then hand the Lease back (holder cleared, duration 1 s) so a
        standby acquires it at its next attempt. Does nothing unless leading. A failed
        release is logged: the Lease then simply expires."""
        if not self.leading.is_set() or self._seen is None:
            return
        seen = self._seen
        self._step_down("released")
        now = self._clock.now().isoformat()
        body = self._lease_body(seen, holder=None, transitions=seen.transitions, now=now)
        body["spec"].update(leaseDurationSeconds=1, acquireTime=self._acquired_at or now)
        for _ in range(2):
            try:
                await self._call(
                    self._api.replace_namespaced_lease(
                        self._config.name, self._config.namespace, body
                    )
                )
                return
            except ApiException as failed:
                if failed.status != 409:
                    logger.warning("lease release failed (it will expire): %s", _describe(failed))
                    return
                # a renewal this elector sent just before it stopped moved the version
                with contextlib.suppress(ApiException, OSError, TimeoutError):
                    current = await self._read()
                    if current is not None and current.holder == self._config.identity:
                        body["metadata"]["resourceVersion"] = current.resource_version
                        continue
                return
            except (OSError, TimeoutError) as failed:
                logger.warning("lease release failed (it will expire): %s", _describe(failed))
                return

    # ---- internals ----------------------------------------------------------------------

    def _until_next_attempt(self) -> float:
        """One retry period, or less when the holder's lease expires sooner: a standby
        tries right at expiry, so failover takes at most lease duration + retry period
        from the holder's last renewal seen."""
        expires_in = self._seen_at + self._config.lease_duration - self._clock.monotonic()
        if self._seen is None or not self._seen.holder or expires_in <= 0:
            return self._config.retry_period
        return min(self._config.retry_period, expires_in + 0.001)

    async def _renew_until_lost(self) -> None:
        while self.leading.is_set():
            await asyncio.sleep(self._config.retry_period)
            if not self.leading.is_set():
                return
            renewed = await self._attempt(acquiring=False)
            if not renewed and self._clock.monotonic() >= self._valid_until:
                self._step_down("renew deadline passed")

    async def _attempt(self, *, acquiring: bool) -> bool:
        """One try to acquire or renew; True when this replica holds the Lease after it.
        On a 409 the Lease is read again and the try repeated once."""
        for _ in range(2):
            started = self._clock.monotonic()
            try:
                seen = await self._read()
                if seen is None:
                    if not acquiring:
                        self._step_down("the Lease is gone")
                        return False
                    return await self._create(started)
                if not self._may_take(seen, acquiring=acquiring):
                    return False
                return await self._update(seen, started, acquiring=acquiring)
            except ApiException as failed:
                if failed.status == 409:
                    continue
                logger.info("lease attempt failed: %s", _describe(failed))
                return False
            except (OSError, TimeoutError) as failed:
                logger.info("lease attempt failed: %s", _describe(failed))
                return False
        return False

    def _may_take(self, seen: _Seen, *, acquiring: bool) -> bool:
        if seen.holder == self._config.identity:
            return True  # ours; a retake after a missed deadline is a fresh acquisition
        if not acquiring:
            self._step_down(f"the Lease is held by {seen.holder or 'nobody'}")
            return False
        if not seen.holder:
            return True  # released
        expired = self._clock.monotonic() >= self._seen_at + self._config.lease_duration
        return expired

    async def _read(self) -> _Seen | None:
        try:
            lease = await self._call(
                self._api.read_namespaced_lease(self._config.name, self._config.namespace)
            )
        except ApiException as failed:
            if failed.status == 404:
                return None
            raise
        spec = lease.spec
        seen = _Seen(
            resource_version=str(lease.metadata.resource_version),
            holder=str(getattr(spec, "holder_identity", None) or ""),
            transitions=int(getattr(spec, "lease_transitions", None) or 0),
        )
        self._highest_term = max(self._highest_term, seen.transitions)
        if self._seen is None or seen.resource_version != self._seen.resource_version:
            self._seen, self._seen_at = seen, self._clock.monotonic()
        return seen

    async def _create(self, started: float) -> bool:
        term = self._highest_term + 1
        now = self._clock.now().isoformat()
        body = self._lease_body(None, holder=self._config.identity, transitions=term, now=now)
        try:
            lease = await self._call(
                self._api.create_namespaced_lease(self._config.namespace, body)
            )
        except ApiException as failed:
            if failed.status == 409:
                return False  # another candidate created it first
            raise
        self._accept(lease, started, term=term)
        return True

    async def _update(self, seen: _Seen, started: float, *, acquiring: bool) -> bool:
        # a renewal writes the term this replica leads under, never a smaller count it
        # reads back (a Lease restored from a backup): another replica would then take
        # that same term again
        renewed = max(seen.transitions, self._term or 0)
        term = max(self._highest_term, seen.transitions) + 1 if acquiring else renewed
        now = self._clock.now().isoformat()
        body = self._lease_body(seen, holder=self._config.identity, transitions=term, now=now)
        if not acquiring:
            body["spec"]["acquireTime"] = self._acquired_at or now
        lease = await self._call(
            self._api.replace_namespaced_lease(self._config.name, self._config.namespace, body)
        )
        self._accept(lease, started, term=term)
        return True

    def _accept(self, lease: Any, started: float, *, term: int) -> None:
        """The write succeeded: lead (or keep leading) until `started + renew_deadline`."""
        self._seen = _Seen(str(lease.metadata.resource_version), self._config.identity, term)
        self._seen_at = started
        self._highest_term = max(self._highest_term, term)
        self._valid_until = started + self._config.renew_deadline
        if not self.leading.is_set():
            self._term = term
            acquired = getattr(lease.spec, "acquire_time", None)
            self._acquired_at = acquired.isoformat() if acquired is not None else ""
            self.not_leading.clear()
            self.leading.set()
            logger.info("leading %s/%s, term %d", self._config.namespace, self._config.name, term)
            if self._on_started is not None:
                self._on_started(term)

    def _step_down(self, why: str) -> None:
        self._valid_until = float("-inf")
        if not self.leading.is_set():
            return
        self.leading.clear()
        self.not_leading.set()
        logger.warning("stopped leading (term %s): %s", self._term, why)
        if self._on_stopped is not None:
            self._on_stopped()

    def _lease_body(
        self, seen: _Seen | None, *, holder: str | None, transitions: int, now: str
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self._config.name, "namespace": self._config.namespace}
        if seen is not None:
            metadata["resourceVersion"] = seen.resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": holder,
                # the API takes whole seconds; standbys time expiry with their own setting
                "leaseDurationSeconds": math.ceil(self._config.lease_duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": transitions,
            },
        }

    async def _call(self, request: Any) -> Any:
        """Bound every request by the renew deadline, so a hung API server cannot hold
        the loop of this elector past the point where leadership is lost anyway."""
        async with asyncio.timeout(self._config.renew_deadline):
            return await request


def _describe(failed: BaseException) -> str:
    if isinstance(failed, ApiException):
        return f"HTTP {failed.status} {failed.reason}"
    return type(failed).__name__
