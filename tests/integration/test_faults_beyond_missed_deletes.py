"""Deletions made while the engine was stopped: a Ready Widget whose finalizers a user
stripped (`kubectl patch … --type=merge -p '{"metadata":{"finalizers":null}}'`) before
deleting it is gone at once, so no watch will ever show it going. The engine started
again must find its stream live in the journal and absent from the first list, journal
it as deleted and run its cleanup once, under its key; a Widget left alone is untouched.
The engine (opening its SQLite journal itself, so the start scan runs), the embedded API
server and kubernetes-asyncio are the real ones, over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from engine.apiserver.http.embedded import serve_apiserver
from engine.fsm import events as ev
from engine.fsm.fold import fold
from engine.fsm.table import DELETED, READY
from engine.journal.location import open_journal
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.manager.settings import Settings
from engine.watchers import connect_kubeconfig
from tests.integration.reconcile_support import (
    WIDGETS,
    Api,
    ExternalService,
    eventually,
    fast_settings,
    install_crd,
    widget_operator,
)
from tests.support.history import assert_checked_and_verified
from tests.support.postgres import Schemas, postgres_schemas, postgres_server

__all__ = ["postgres_schemas", "postgres_server"]


@contextlib.asynccontextmanager
async def _engine(
    tmp_path: Path, service: ExternalService, settings: Settings | None = None
) -> AsyncIterator[Controller]:
    client = await connect_kubeconfig(tmp_path / "kubeconfig")
    controller = Controller(
        ControllerDeps(
            operator=widget_operator(service),
            settings=settings or fast_settings(tmp_path),
            api_client=client,
            journal_path=None if settings is not None else tmp_path / "journal.db",
            serve_health=False,
            handle_signals=False,
            shutdown_timeout=0.5,
        )
    )
    task = asyncio.create_task(controller.run())
    try:
        await asyncio.wait_for(controller.ready.wait(), 15)
        yield controller
    finally:
        await controller.stop()
        await task
        await client.close()


async def test_a_widget_deleted_with_its_finalizers_stripped_while_stopped_is_cleaned_up_once(
    tmp_path: Path,
) -> None:
    service, journal_path = ExternalService(), tmp_path / "journal.db"
    async with (
        serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, server.url)
        await install_crd(api, widget_operator(service))

        async def ready(name: str) -> bool:
            status = ((await api.get(f"{WIDGETS}/{name}")) or {}).get("status") or {}
            return status.get("phase") == READY

        async with _engine(tmp_path, service):
            gone = (await api.create_widget("stripped", size=1))["metadata"]["uid"]
            kept = (await api.create_widget("kept", size=2))["metadata"]["uid"]
            await eventually(lambda: ready("stripped"), "stripped Ready")
            await eventually(lambda: ready("kept"), "kept Ready")
        # stopped: the finalizers stripped, then the Widget deleted (gone at once)
        await api.merge(f"{WIDGETS}/stripped", {"metadata": {"finalizers": None}})
        assert await api.delete(f"{WIDGETS}/stripped") == 200
        assert await api.get(f"{WIDGETS}/stripped") is None
        assert set(service.registered) == {"stripped", "kept"}

        async with _engine(tmp_path, service):

            async def cleaned_up() -> bool:
                return any(k.startswith(f"{gone}:") and "unregister" in k for k in service.calls)

            await eventually(cleaned_up, "the stripped Widget's cleanup", within=10)
            await asyncio.sleep(0.5)  # room for a second cleanup call, which would show below
        assert service.registered == {"kept": {"size": 2}}
        unregisters = {k: n for k, n in service.calls.items() if "unregister" in k}
        assert list(unregisters.values()) == [1], service.calls
        assert next(iter(unregisters)).startswith(f"{gone}:")
        assert all(count == 1 for count in service.calls.values()), service.calls
        assert await ready("kept")

    journal = await SqliteJournal.open(journal_path, synchronous="NORMAL")
    try:
        streams = await journal.streams()
        (stripped,) = [s for s in streams if s.endswith(f"#{gone}")]
        (left,) = [s for s in streams if s.endswith(f"#{kept}")]
        records = await journal.read_stream(stripped)
        assert fold(records).state == DELETED
        observed = [r.data for r in records if r.type == ev.OBSERVED]
        # journaled as a relist's deletion (then, the ConfigMap collected with its owner,
        # once more by the reconcile with the child's drift)
        assert next(o["watch_event"] for o in observed if not o["exists"]) == "deleted"
        assert observed[-1]["exists"] is False
        assert fold(await journal.read_stream(left)).state == READY
    finally:
        await journal.close()
    await assert_checked_and_verified(journal_path, widget_operator(ExternalService()))


async def test_a_name_deleted_and_created_again_while_stopped_has_the_old_uid_cleaned_up_first(
    tmp_path: Path,
) -> None:
    """The same, then the name created again (a new uid) before the engine starts: the old
    uid's cleanup runs once, then the new one is provisioned once (its registration is
    the one left)."""
    service = ExternalService()
    async with (
        serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, server.url)
        await install_crd(api, widget_operator(service))

        async def ready_as(uid: str) -> bool:
            widget = (await api.get(f"{WIDGETS}/reborn")) or {}
            phase = (widget.get("status") or {}).get("phase")
            return widget.get("metadata", {}).get("uid") == uid and phase == READY

        async with _engine(tmp_path, service):
            first = (await api.create_widget("reborn", size=1))["metadata"]["uid"]
            await eventually(lambda: ready_as(first), "the first reborn Ready")
        await api.merge(f"{WIDGETS}/reborn", {"metadata": {"finalizers": None}})
        assert await api.delete(f"{WIDGETS}/reborn") == 200
        second = (await api.create_widget("reborn", size=3))["metadata"]["uid"]

        async with _engine(tmp_path, service):
            await eventually(lambda: ready_as(second), "the second reborn Ready", within=10)
            await asyncio.sleep(0.5)  # room for a needless extra call, which would show below
        assert list(service.calls) == [
            f"{first}:1:register",
            f"{first}:1:unregister",
            f"{second}:1:register",
        ], service.calls
        assert all(count == 1 for count in service.calls.values()), service.calls
        assert service.registered == {"reborn": {"size": 3}}

    journal = await SqliteJournal.open(tmp_path / "journal.db", synchronous="NORMAL")
    try:
        streams = await journal.streams()
        (old,) = [s for s in streams if s.endswith(f"#{first}")]
        (new,) = [s for s in streams if s.endswith(f"#{second}")]
        assert fold(await journal.read_stream(old)).state == DELETED
        assert fold(await journal.read_stream(new)).state == READY
    finally:
        await journal.close()
    await assert_checked_and_verified(tmp_path / "journal.db", widget_operator(ExternalService()))


async def test_a_sharded_replica_cleans_up_a_widget_of_its_shards_deleted_while_stopped(
    tmp_path: Path, postgres_schemas: Schemas
) -> None:
    """The same with `shards` (a PostgreSQL journal, one replica holding both shards): the
    missed deletion is kept in the view until its shard is acquired, then reconciled."""
    service, url = ExternalService(), postgres_schemas.new()
    settings = fast_settings(
        tmp_path, journal_url=url, shards=2, lease_duration_seconds=1.0,
        lease_renew_deadline_seconds=0.8, lease_retry_period_seconds=0.1,
    )  # fmt: skip
    async with (
        serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, server.url)
        await install_crd(api, widget_operator(service))

        async def ready(name: str) -> bool:
            status = ((await api.get(f"{WIDGETS}/{name}")) or {}).get("status") or {}
            return status.get("phase") == READY

        async with _engine(tmp_path, service, settings):
            gone = (await api.create_widget("stripped", size=1))["metadata"]["uid"]
            await api.create_widget("kept", size=2)
            await eventually(lambda: ready("stripped"), "stripped Ready")
            await eventually(lambda: ready("kept"), "kept Ready")
        await api.merge(f"{WIDGETS}/stripped", {"metadata": {"finalizers": None}})
        assert await api.delete(f"{WIDGETS}/stripped") == 200

        async with _engine(tmp_path, service, settings):

            async def cleaned_up() -> bool:
                return f"{gone}:1:unregister" in service.calls

            await eventually(cleaned_up, "the stripped Widget's cleanup", within=10)
            await asyncio.sleep(0.5)  # room for a second cleanup call
        assert service.registered == {"kept": {"size": 2}}
        assert all(count == 1 for count in service.calls.values()), service.calls
        assert len(service.calls) == 3, service.calls

    journal = await open_journal(url)
    try:
        (stripped,) = [s for s in await journal.streams() if s.endswith(f"#{gone}")]
        assert fold(await journal.read_stream(stripped)).state == DELETED
    finally:
        await journal.close()
