"""The simulated kubelet task: registers the Nodes, then moves each Pod through its stages
(`pod_stages.advance`) on timers, and removes deleted Pods once their grace period (capped
by the settings) is over. Learns of Pods through a storage listener, not by polling."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from engine.apiserver.gc.cascade import removal_writes
from engine.apiserver.http.target import Target
from engine.apiserver.kubelet.node_objects import node_body, node_ip, node_name
from engine.apiserver.kubelet.pod_stages import KubeletSettings, advance, finishes
from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.store.errors import ApiError
from engine.apiserver.store.storage import Change, StaleWrite
from engine.apiserver.verbs import lifecycle
from engine.apiserver.verbs.writes import WriteOptions, commit_prepared, create

LOG = logging.getLogger(__name__)
_POD_PREFIX = "/pods/"
_RETRY = 0.01


class Kubelet:
    """One simulated kubelet for `settings.nodes` nodes; `run` until cancelled."""

    def __init__(self, ctx: ApiContext, settings: KubeletSettings) -> None:
        self._ctx = ctx
        self._settings = settings
        self._due: list[tuple[float, int, str]] = []
        self._scheduled: dict[str, float] = {}
        self._order = itertools.count()
        self._next_node = itertools.cycle(range(max(1, settings.nodes)))
        self._wake = asyncio.Event()
        ctx.store.add_listener(self._on_changes)

    def schedule(self, key: str, delay: float) -> None:
        """Look at the Pod at `key` again in `delay` seconds (an earlier time wins)."""
        due = time.monotonic() + max(0.0, delay)
        if key in self._scheduled and self._scheduled[key] <= due:
            return
        self._scheduled[key] = due
        heapq.heappush(self._due, (due, next(self._order), key))
        self._wake.set()

    def _on_changes(self, changes: Sequence[Change]) -> None:
        for change in changes:
            if change.key.startswith(_POD_PREFIX) and change.type != "DELETED":
                self._notice(change.key, change.body)

    def _notice(self, key: str, pod: Mapping[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            grace = float(meta.get("deletionGracePeriodSeconds") or 0)
            self.schedule(key, min(grace, self._settings.grace_cap))
        elif not (pod.get("spec") or {}).get("nodeName"):
            self.schedule(key, 0.0)

    async def run(self) -> None:
        """Register the nodes (if `register_nodes` has not), pick up stored Pods, then serve
        the timers forever."""
        await self.register_nodes()
        for key, pod in list(self._ctx.store.items(_POD_PREFIX)):
            self._notice(key, pod)
            phase = (pod.get("status") or {}).get("phase")
            if phase == "Pending" or (phase == "Running" and finishes(pod)):
                self.schedule(key, self._settings.start_delay)
        while True:
            timeout = self._due[0][0] - time.monotonic() if self._due else None
            if timeout is None or timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                due, _, key = heapq.heappop(self._due)
                if self._scheduled.get(key) != due:
                    continue  # superseded by an earlier schedule
                del self._scheduled[key]
                try:
                    await self._process(key)
                except StaleWrite:
                    self.schedule(key, _RETRY)
                except asyncio.CancelledError:
                    raise
                except Exception:  # one Pod's trouble must not stop the others
                    LOG.exception("simulated kubelet failed on %s", key)

    async def register_nodes(self) -> None:
        """Create the simulated Node objects that do not exist yet."""
        rtype = self._ctx.registry.lookup("", "v1", "nodes")
        assert rtype is not None
        now = lifecycle.timestamp(self._ctx.now())
        for index in range(max(1, self._settings.nodes)):
            if self._ctx.store.get(rtype.key("", node_name(index))) is not None:
                continue
            body = node_body(index, now=now)
            status = body.pop("status")
            target = Target(rtype=rtype, namespace=None, name=None, subresource=None)
            with contextlib.suppress(ApiError):
                created = (await create(self._ctx, target, body, WriteOptions())).obj
                key = rtype.key("", node_name(index))
                await commit_prepared(
                    self._ctx, key, created, {**created, "status": status}, dry_run=False
                )

    async def _process(self, key: str) -> None:
        store = self._ctx.store
        pod = store.get(key)
        if pod is None:
            return
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            if not meta.get("finalizers"):
                await store.commit(removal_writes(self._ctx, key, pod))
            return
        spec = pod.get("spec") or {}
        index = self._node_index(spec.get("nodeName"))
        step = advance(
            pod,
            node=node_name(index),
            node_ip=node_ip(index),
            now=lifecycle.timestamp(self._ctx.now()),
            settings=self._settings,
        )
        if step is None:
            return
        await commit_prepared(
            self._ctx, key, pod, {**pod, "spec": step.spec, "status": step.status}, dry_run=False
        )
        if step.next_in is not None:
            self.schedule(key, step.next_in)

    def _node_index(self, bound: Any) -> int:
        if bound:
            for index in range(max(1, self._settings.nodes)):
                if node_name(index) == bound:
                    return index
            return 0
        return next(self._next_node)
