"""Carry out planned actions through the server's own write paths (admission, lifecycle
rules, the change log), as a client's requests would. A write that lost a race is
reported back so the object is planned again."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from engine.apiserver.controllers.actions import (
    Action,
    CreateObject,
    DeleteObject,
    EventNote,
    RecordEvent,
    SetStatus,
    UpdateObject,
)
from engine.apiserver.controllers.event_records import event_body
from engine.apiserver.http.target import Target
from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.store.errors import ApiError
from engine.apiserver.store.resource_types import ResourceType
from engine.apiserver.store.storage import StaleWrite
from engine.apiserver.verbs import lifecycle
from engine.apiserver.verbs.deletion import DeleteOptions, delete_object
from engine.apiserver.verbs.writes import WriteOptions, commit_prepared, create

LOG = logging.getLogger(__name__)


class Applier:
    """Applies actions for the controllers; `apply` says whether any write was stale."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def type_of_key(self, key: str) -> ResourceType | None:
        """The stored type whose keys start like `key`."""
        for rtype in self._ctx.registry.storage_types():
            if key.startswith(rtype.prefix(None)):
                return rtype
        return None

    async def apply(self, actions: Sequence[Action]) -> bool:
        """Apply `actions` in order; True when one found its object changed (plan again)."""
        stale = False
        for action in actions:
            try:
                stale = await self._apply(action) or stale
            except StaleWrite:
                stale = True
            except ApiError as refused:  # e.g. the namespace is terminating: nothing to do
                LOG.debug("controller action %s refused: %s", type(action).__name__, refused)
        return stale

    async def _apply(self, action: Action) -> bool:
        store = self._ctx.store
        if isinstance(action, CreateObject):
            await self._create(action)
            return False
        if isinstance(action, RecordEvent):
            await self.record(action.event)
            return False
        rtype = self.type_of_key(action.key)
        old = store.get(action.key)
        if rtype is None or old is None:
            return isinstance(action, UpdateObject | SetStatus)
        if isinstance(action, DeleteObject):
            await delete_object(self._ctx, rtype, action.key, DeleteOptions(policy=action.policy))
            if action.event is not None:
                await self.record(action.event)
            return False
        if isinstance(action, SetStatus):
            wanted: dict[str, Any] = {**old, "status": dict(action.status)}
            new = lifecycle.prepare_update(rtype, old, wanted, status_only=True)
        else:
            if old["metadata"].get("resourceVersion") != action.resource_version:
                return True
            new = lifecycle.prepare_update(rtype, old, dict(action.body), status_only=False)
        await commit_prepared(self._ctx, action.key, old, new, dry_run=False)
        if isinstance(action, UpdateObject) and action.event is not None:
            await self.record(action.event)
        return False

    async def _create(self, action: CreateObject) -> None:
        body = dict(action.body)
        group, _, _ = str(body.get("apiVersion", "")).rpartition("/")
        rtype = self._ctx.registry.by_kind(group, str(body.get("kind", "")))
        if rtype is None:
            return
        target = Target(
            rtype=rtype, namespace=action.namespace or None, name=None, subresource=None
        )
        result = await create(self._ctx, target, body, WriteOptions())
        if action.event is not None:
            await self.record(action.event, created_name=str(result.obj["metadata"]["name"]))

    async def record(self, note: EventNote, *, created_name: str = "") -> None:
        """Store an Event for `note` in the involved object's namespace."""
        namespace = str((note.involved.get("metadata") or {}).get("namespace") or "default")
        rtype = self._ctx.registry.lookup("", "v1", "events")
        assert rtype is not None
        body = event_body(note, now=lifecycle.timestamp(self._ctx.now()), created_name=created_name)
        target = Target(rtype=rtype, namespace=namespace, name=None, subresource=None)
        await create(self._ctx, target, body, WriteOptions())
