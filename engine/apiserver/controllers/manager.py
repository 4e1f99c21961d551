"""The controller manager inside the server: reads every committed change (a storage
listener), keeps the workload index, marks the objects a change concerns, and reconciles
each marked object once per round through its controller's pure planning."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from engine.apiserver.controllers import pod_facts as facts
from engine.apiserver.controllers.applier import Applier
from engine.apiserver.controllers.deployment_plan import plan_deployment
from engine.apiserver.controllers.job_plan import plan_job
from engine.apiserver.controllers.namespace_plan import plan_namespace
from engine.apiserver.controllers.replicaset_plan import plan_replicaset
from engine.apiserver.controllers.statefulset_plan import plan_statefulset
from engine.apiserver.controllers.workload_index import WorkloadIndex, split_key
from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.store.storage import Change
from engine.apiserver.verbs import lifecycle

LOG = logging.getLogger(__name__)
_OWNERS = {"replicasets", "deployments", "statefulsets", "jobs"}
_NAMESPACE_PREFIX = "/namespaces//"


class ControllerManager:
    """Runs the workload and namespace controllers until cancelled."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        self.index = WorkloadIndex()
        self.index.rebuild(ctx.store.all_objects())
        self._applier = Applier(ctx)
        self._dirty: set[str] = {
            key for key, _ in ctx.store.all_objects() if split_key(key)[1] in _OWNERS
        } | {key for key, obj in ctx.store.all_objects() if self._terminating_namespace(key, obj)}
        self._wake = asyncio.Event()
        self._wake.set()
        ctx.store.add_listener(self._on_changes)

    @staticmethod
    def _terminating_namespace(key: str, obj: Mapping[str, Any]) -> bool:
        return key.startswith(_NAMESPACE_PREFIX) and facts.is_deleting(obj)

    def _on_changes(self, changes: Sequence[Change]) -> None:
        for change in changes:
            deleted = change.type == "DELETED"
            previous = self.index.update(change.key, change.body, deleted=deleted)
            self._route(change, previous, deleted=deleted)
        if self._dirty:
            self._wake.set()

    def _route(self, change: Change, previous: str | None, *, deleted: bool) -> None:
        _, plural, namespace, _ = split_key(change.key)
        if plural in _OWNERS:
            self._dirty.add(change.key)
        for uid in {previous, facts.controller_uid(change.body)}:
            owner = self.index.key_of(uid) if uid else None
            if owner is not None and split_key(owner)[1] in _OWNERS:
                self._dirty.add(owner)
        if plural == "pods" and not deleted and facts.controller_uid(change.body) is None:
            self._dirty.update(self.index.of_kind("replicasets", namespace))
        if plural == "namespaces" and not deleted and facts.is_deleting(change.body):
            self._dirty.add(change.key)
        if namespace:
            ns_key = f"{_NAMESPACE_PREFIX}{namespace}"
            ns_obj = self._ctx.store.get(ns_key)
            if ns_obj is not None and facts.is_deleting(ns_obj):
                self._dirty.add(ns_key)

    async def run(self) -> None:
        """Reconcile marked objects forever (cancel to stop)."""
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._ctx.settings.gc_debounce)
            self._wake.clear()
            keys, self._dirty = self._dirty, set()
            for key in sorted(keys):
                try:
                    stale = await self.reconcile(key)
                except asyncio.CancelledError:
                    raise
                except Exception:  # one object's trouble must not stop the others
                    LOG.exception("reconciling %s failed", key)
                    stale = False
                if stale:
                    self._dirty.add(key)
                    self._wake.set()

    async def reconcile(self, key: str) -> bool:
        """Plan and apply for the object at `key`; whether a write was stale."""
        obj = self._ctx.store.get(key)
        if obj is None:
            return False
        _, plural, namespace, _ = split_key(key)
        now = lifecycle.timestamp(self._ctx.now())
        uid = str(obj["metadata"].get("uid", ""))
        if plural == "replicasets":
            orphans = self._objects(self.index.orphan_pods(namespace))
            actions = plan_replicaset(obj, self._controlled(uid, "pods"), orphans=orphans)
        elif plural == "deployments":
            actions = plan_deployment(obj, self._controlled(uid, "replicasets"), now=now)
        elif plural == "statefulsets":
            actions = plan_statefulset(obj, self._controlled(uid, "pods"))
        elif plural == "jobs":
            actions = plan_job(obj, self._controlled(uid, "pods"), now=now)
        elif plural == "namespaces":
            name = split_key(key)[3]
            contents = [
                (k, o) for k in self.index.in_namespace(name) if (o := self._ctx.store.get(k))
            ]
            actions = plan_namespace(obj, contents)
        else:
            return False
        return await self._applier.apply(actions)

    def _controlled(self, uid: str, plural: str) -> list[dict[str, Any]]:
        return self._objects(self.index.controlled_by(uid, plural=plural))

    def _objects(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        return [obj for key in keys if (obj := self._ctx.store.get(key)) is not None]
