"""An API server restored from a backup, under a running engine.

First: the restore brings back a Lease with fewer transitions than
the term the engine leads under. Under a running, leading engine the restored Lease
names this replica: its renewals must not carry the restored, smaller count on (another
replica would then take the same term again: two leaders under one fencing token); the
Lease is written back with the current term and the engine goes on leading under it.
An engine started after such a restore must take a term above the journal's, not one
above the restored Lease's only (that is the term an earlier leader already used).

The backup is a copy of the embedded API server's SQLite database (SQLite's online
backup) taken during the first term; the restore stops the server, puts the copy in
place and starts it again on the same port. The engine, the API server and its
database are the real ones, over real HTTP.

Second: the restore brings back Widgets as they were at the backup, behind what the
journal holds of them (one created after the backup is gone, one deleted after it is
back, one changed after it is back at its first generation). The engine's watches,
resumed from versions the restored server has not reached, are refused (504
`ResourceVersionTooLarge`) and relist; the relist journals what is gone as deleted and
what is behind as `restored`, which starts a new round of keys: the deleted one is
treated as a new life (provisioned again, Ready, registered again: the backup says it
exists), the changed one is provisioned again with its restored spec.

Third: an operator that watches one kind only (Widgets, no child, no Lease), the backup
restored with `engine apiserver restore` (the revision bumped, everything below marked
compacted). Its watch resumes from a version below the restored revision, so no 504 can
tell it; the bump makes that resume point compacted, the watch is 410 Expired and the one
kind relists. Without the bump (the plain copy, its revision pushed past the resume point
by other writes before the engine reconnects) the same watch resumes without an error and
the restored state is never seen."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import pytest

from engine.apiserver.http.embedded import serve_apiserver
from engine.apiserver.store.restore import restore_database
from engine.fsm import events as ev
from engine.fsm.fold import fold
from engine.fsm.table import DELETED, READY
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.manager.settings import Settings
from engine.runtime.reconcile.operator import Operator
from engine.watchers import RestartReason, connect_kubeconfig
from tests.integration.reconcile_support import (
    CONFIGMAPS,
    KIND,
    NAMESPACE,
    WIDGETS,
    Api,
    ExternalService,
    eventually,
    fast_settings,
    install_crd,
    widget_operator,
)
from tests.support.history import assert_checked_and_verified

LEASE = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/engine-leader"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Server:
    """The embedded API server on one database and one port, stopped and started again."""

    def __init__(self, db: Path, port: int, kubeconfig: Path) -> None:
        self._db, self._port, self._kubeconfig = db, port, kubeconfig
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(
            serve_apiserver(db=str(self._db), port=self._port, kubeconfig_path=self._kubeconfig)
        )
        self._stack = stack

    async def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()


def _backup(db: Path, copy: Path) -> None:
    with (
        contextlib.closing(sqlite3.connect(db)) as source,
        contextlib.closing(sqlite3.connect(copy)) as target,
    ):
        source.backup(target)


def _restore(copy: Path, db: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(copy.read_bytes())


def _restore_bumped(copy: Path, db: Path) -> None:
    """`engine apiserver restore copy --db db`: the database removed first, the backup
    written in its place with the revision bumped by the default 1,000,000."""
    for stale in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        stale.unlink(missing_ok=True)
    restored = restore_database(copy, db)
    assert restored.revision == restored.backup_revision + 1_000_000


@contextlib.asynccontextmanager
async def _leading(
    kubeconfig: Path,
    journal: SqliteJournal,
    settings: Settings,
    service: ExternalService | None = None,
    operator: Operator | None = None,
) -> AsyncIterator[Controller]:
    """A Controller (with leader election on when `settings` say so), until the end of
    the block; `operator` (default: the Widget operator on `service`)."""
    client = await connect_kubeconfig(kubeconfig)
    controller = Controller(
        ControllerDeps(
            operator=operator or widget_operator(service or ExternalService()),
            settings=settings,
            api_client=client,
            journal=journal,
            handle_signals=False,
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


@contextlib.asynccontextmanager
async def _closing(journal: SqliteJournal) -> AsyncIterator[SqliteJournal]:
    try:
        yield journal
    finally:
        await journal.close()


async def _terms(journal: SqliteJournal) -> list[int]:
    return [
        record.data["term"]
        async for record in journal.read_all()
        if record.type == ev.LEADER_ELECTED
    ]


async def test_a_restored_lease_with_fewer_transitions_does_not_take_the_term_back(
    tmp_path: Path,
) -> None:
    db, copy, kubeconfig = tmp_path / "api.db", tmp_path / "backup.db", tmp_path / "kubeconfig"
    port = _free_port()
    settings = fast_settings(
        tmp_path,
        leader_election=True,
        lease_duration_seconds=1.0,
        lease_renew_deadline_seconds=0.8,
        lease_retry_period_seconds=0.1,
    )
    server = _Server(db, port, kubeconfig)
    await server.start()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(server.stop)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        api = Api(session, f"http://127.0.0.1:{port}")
        await install_crd(api, widget_operator(ExternalService()))
        journal = await SqliteJournal.open(tmp_path / "journal.db", synchronous="NORMAL")
        stack.push_async_callback(journal.close)

        async def lease_spec() -> dict[str, object]:
            lease = await api.get(LEASE)
            return dict((lease or {}).get("spec") or {})

        async def held_at(term: int) -> bool:
            return (await lease_spec()).get("leaseTransitions") == term

        async def restore() -> None:
            await server.stop()
            _restore(copy, db)
            await server.start()
            # the backup's Lease: the first leader holding it, 1 transition
            assert (await lease_spec()).get("leaseTransitions") == 1

        async with _leading(kubeconfig, journal, settings):
            await eventually(lambda: held_at(1), "leading under term 1", within=10)
            identity = (await lease_spec())["holderIdentity"]
            _backup(db, copy)
            # another holder takes the Lease and never renews: this replica leads again
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            await api.merge(LEASE, {"spec": {"holderIdentity": "another", "renewTime": now}})

            async def leads_under(term: int) -> bool:
                spec = await lease_spec()
                held = spec.get("holderIdentity"), spec.get("leaseTransitions")
                return held == (identity, term)

            await eventually(lambda: leads_under(2), "leading again under term 2", within=10)
            assert journal.term == 2
            await restore()
            # the renewals write the term the engine leads under back, not the restored 1
            await eventually(lambda: leads_under(2), "the Lease carries term 2 again", within=10)
            for _ in range(3):
                await asyncio.sleep(0.1)
                assert await held_at(2)
            assert journal.term == 2
        # stopped (the Lease released at 2), then the backup put back again: a new engine
        # on this journal must not lead under 2 a second time
        await restore()
        async with _leading(kubeconfig, journal, settings):
            await eventually(lambda: held_at(3), "a new leader under term 3", within=10)
            assert journal.term == 3
        assert await _terms(journal) == [1, 2, 3]


@pytest.mark.parametrize("bumped", [False, True], ids=["plain-copy", "revision-bumped"])
async def test_widgets_restored_from_a_backup_are_relisted_and_reconciled_again(
    tmp_path: Path, bumped: bool
) -> None:
    """The plain copy put back: the watches are refused as too large (504). Restored with
    `engine apiserver restore` (`bumped`): they are 410 Expired. Either way every kind
    relists before a reconcile starts (without that hold on 410, a reconcile started on
    the Widgets' relist before the ConfigMaps had relisted, and the changed Widget's step
    then ran round after round on `drift_detected`: 27 needless rounds in one run)."""
    db, copy, kubeconfig = tmp_path / "api.db", tmp_path / "backup.db", tmp_path / "kubeconfig"
    server = _Server(db, _free_port(), kubeconfig)
    service = ExternalService()
    await server.start()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(server.stop)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        api = Api(session, server.url)
        await install_crd(api, widget_operator(service))
        journal_path = tmp_path / "journal.db"
        journal = await SqliteJournal.open(journal_path, synchronous="NORMAL")

        async def ready(name: str, generation: int) -> bool:
            widget = await api.get(f"{WIDGETS}/{name}")
            status = (widget or {}).get("status") or {}
            return (status.get("phase"), status.get("observedGeneration")) == (READY, generation)

        async def config_size(name: str) -> str | None:
            found = await api.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}-config")
            return None if found is None else str(found["data"]["size"])

        async def state_of(uid: str) -> str:
            streams = [s for s in await journal.streams() if s.endswith(f"#{uid}")]
            return fold(await journal.read_stream(streams[0])).state if streams else ""

        def keys_of(uid: str, step: str) -> list[str]:
            """The keys `step` was called under for `uid`, round 0 first, by generation."""
            found = [k for k in service.calls if k.startswith(f"{uid}:") and step in k]
            return sorted(found, key=lambda k: (k.count(":"), k))

        async with (
            _closing(journal),
            _leading(kubeconfig, journal, fast_settings(tmp_path), service),
        ):
            deleted = await api.create_widget("deleted-after", size=1)
            changed = await api.create_widget("changed-after", size=1)
            await eventually(lambda: ready("deleted-after", 1), "deleted-after Ready")
            await eventually(lambda: ready("changed-after", 1), "changed-after Ready")
            _backup(db, copy)
            late = await api.create_widget("created-after", size=5)
            await eventually(lambda: ready("created-after", 1), "created-after Ready")
            assert await api.delete(f"{WIDGETS}/deleted-after") == 200
            await api.merge(f"{WIDGETS}/changed-after", {"spec": {"size": 2}})
            await eventually(lambda: ready("changed-after", 2), "changed-after Ready at 2")

            async def after_backup_done() -> bool:
                gone = await api.get(f"{WIDGETS}/deleted-after") is None
                return gone and await state_of(deleted["metadata"]["uid"]) == DELETED

            await eventually(after_backup_done, "deleted-after finalized and gone")
            assert service.registered == {
                "changed-after": {"size": 2},
                "created-after": {"size": 5},
            }
            assert await config_size("changed-after") == "2"

            await server.stop()
            if bumped:
                _restore_bumped(copy, db)
            else:
                _restore(copy, db)
            await server.start()
            assert await api.get(f"{WIDGETS}/created-after") is None  # the backup's state
            restored = await api.get(f"{WIDGETS}/changed-after")
            assert restored is not None
            assert restored["metadata"]["generation"] == 1

            async def converged() -> bool:
                return (
                    await state_of(late["metadata"]["uid"]) == DELETED
                    and await ready("deleted-after", 1)
                    and await ready("changed-after", 1)
                    and service.registered.get("changed-after") == {"size": 1}
                    and await config_size("changed-after") == "1"
                )

            await eventually(converged, "the restored state reconciled", within=20)
            await asyncio.sleep(0.5)  # room for a needless extra round, which would show below
            # the one created after the backup: journaled as gone, cleaned up once
            assert "created-after" not in service.registered
            assert len(keys_of(late["metadata"]["uid"], "unregister")) == 1
            # the one deleted after the backup: a new life under new keys, registered again
            assert service.registered["deleted-after"] == {"size": 1}
            first, again = keys_of(deleted["metadata"]["uid"], ":register")
            assert first == f"{deleted['metadata']['uid']}:1:register"
            assert again.startswith(f"{deleted['metadata']['uid']}:1:register:")
            assert await state_of(deleted["metadata"]["uid"]) == READY
            # the changed one: its first generation's step runs once more, under a new round
            uid = changed["metadata"]["uid"]
            once, twice, rerun = keys_of(uid, ":register")
            assert (once, twice) == (f"{uid}:1:register", f"{uid}:2:register")
            assert rerun.startswith(f"{uid}:1:register:")
            # no other call: 2 before the backup, 3 after it, 3 after the restore
            assert len(service.calls) == 8, service.calls
            assert all(count == 1 for count in service.calls.values()), service.calls
    await assert_checked_and_verified(journal_path, widget_operator(ExternalService()))


async def test_a_widget_the_backup_lacks_is_finalized_by_an_engine_started_after_the_restore(
    tmp_path: Path,
) -> None:
    """The engine stopped, the backup put back, a new engine started on the same journal:
    its first list lacks the Widget created after the backup, whose stream the journal
    holds Ready; it is journaled as gone and cleaned up once (its registration goes)."""
    db, copy, kubeconfig = tmp_path / "api.db", tmp_path / "backup.db", tmp_path / "kubeconfig"
    server = _Server(db, _free_port(), kubeconfig)
    service = ExternalService()
    await server.start()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(server.stop)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        api = Api(session, server.url)
        await install_crd(api, widget_operator(service))
        journal_path = tmp_path / "journal.db"
        journal = await SqliteJournal.open(journal_path, synchronous="NORMAL")

        async def ready(name: str) -> bool:
            widget = await api.get(f"{WIDGETS}/{name}")
            return ((widget or {}).get("status") or {}).get("phase") == READY

        async def state_of(uid: str) -> str:
            streams = [s for s in await journal.streams() if s.endswith(f"#{uid}")]
            return fold(await journal.read_stream(streams[0])).state if streams else ""

        async with _closing(journal):
            async with _leading(kubeconfig, journal, fast_settings(tmp_path), service):
                kept = await api.create_widget("kept", size=1)
                await eventually(lambda: ready("kept"), "kept Ready")
                _backup(db, copy)
                late = await api.create_widget("created-after", size=5)
                await eventually(lambda: ready("created-after"), "created-after Ready")
            await server.stop()
            _restore(copy, db)
            await server.start()
            assert await api.get(f"{WIDGETS}/created-after") is None  # the backup's state
            assert await state_of(late["metadata"]["uid"]) == READY
            assert set(service.registered) == {"kept", "created-after"}

            async with _leading(kubeconfig, journal, fast_settings(tmp_path), service):

                async def finalized() -> bool:
                    return await state_of(late["metadata"]["uid"]) == DELETED

                await eventually(finalized, "created-after journaled gone", within=10)
                await asyncio.sleep(0.5)  # room for a needless extra call, which would show
                assert await ready("kept")
            assert service.registered == {"kept": {"size": 1}}
            uid = late["metadata"]["uid"]
            assert [k for k in service.calls if "unregister" in k] == [f"{uid}:1:unregister"]
            assert sorted(service.calls) == sorted(
                [
                    f"{kept['metadata']['uid']}:1:register",
                    f"{uid}:1:register",
                    f"{uid}:1:unregister",
                ]
            ), service.calls
            assert all(count == 1 for count in service.calls.values()), service.calls
    await assert_checked_and_verified(journal_path, widget_operator(ExternalService()))


def _store_revision(db: Path) -> int:
    """The revision the stopped server's database holds."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (revision,) = conn.execute("SELECT revision FROM meta").fetchone()
    return int(revision)


async def _revision(api: Api) -> int:
    """The server's revision: the resourceVersion of a list of the Widgets."""
    listed = await api.get(WIDGETS)
    assert listed is not None
    return int(listed["metadata"]["resourceVersion"])


async def _ready(api: Api, name: str, generation: int) -> bool:
    widget = await api.get(f"{WIDGETS}/{name}")
    status = (widget or {}).get("status") or {}
    return (status.get("phase"), status.get("observedGeneration")) == (READY, generation)


async def _state_of(journal: SqliteJournal, uid: str) -> str:
    streams = [s for s in await journal.streams() if s.endswith(f"#{uid}")]
    return fold(await journal.read_stream(streams[0])).state if streams else ""


async def _restored_uids(journal: SqliteJournal) -> set[str]:
    """The uids the journal holds a `restored` observation of."""
    return {
        record.stream.rsplit("#", 1)[-1]
        async for record in journal.read_all()
        if record.type == ev.OBSERVED and ev.parse_observation(record).restored
    }


def _restarts(controller: Controller, reason: RestartReason) -> float:
    """How many times the engine's Widget watch restarted for `reason`."""
    labels = {"kind": KIND, "reason": str(reason)}
    found = controller.metrics.registry.get_sample_value("engine_watch_restarts_total", labels)
    return found or 0.0


async def _changed_after_a_backup(
    api: Api, db: Path, copy: Path, journal: SqliteJournal, service: ExternalService
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Two Widgets Ready, the backup taken, then one created, one deleted, one's spec
    changed, all reconciled: (deleted, changed, created) as first created."""
    deleted = await api.create_widget("deleted-after", size=1)
    changed = await api.create_widget("changed-after", size=1)
    await eventually(lambda: _ready(api, "deleted-after", 1), "deleted-after Ready")
    await eventually(lambda: _ready(api, "changed-after", 1), "changed-after Ready")
    _backup(db, copy)
    late = await api.create_widget("created-after", size=5)
    await eventually(lambda: _ready(api, "created-after", 1), "created-after Ready")
    assert await api.delete(f"{WIDGETS}/deleted-after") == 200
    await api.merge(f"{WIDGETS}/changed-after", {"spec": {"size": 2}})
    await eventually(lambda: _ready(api, "changed-after", 2), "changed-after Ready at 2")

    async def after_backup_done() -> bool:
        gone = await api.get(f"{WIDGETS}/deleted-after") is None
        return gone and await _state_of(journal, deleted["metadata"]["uid"]) == DELETED

    await eventually(after_backup_done, "deleted-after finalized and gone")
    assert service.registered == {"changed-after": {"size": 2}, "created-after": {"size": 5}}
    return deleted, changed, late


async def test_a_lone_watched_kind_relists_after_a_restore_with_the_revision_bumped(
    tmp_path: Path,
) -> None:
    """`engine apiserver restore`'s bump under an operator watching Widgets only: the
    restored revision is past the engine's resume point before the server is even
    started, so no 504 can come; the resume point is compacted, the watch is 410
    Expired, the kind relists and the restored state is reconciled as after a 504."""
    db, copy, kubeconfig = tmp_path / "api.db", tmp_path / "backup.db", tmp_path / "kubeconfig"
    server = _Server(db, _free_port(), kubeconfig)
    service = ExternalService()
    operator = widget_operator(service, config_map=False)
    assert operator.children == ()
    await server.start()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(server.stop)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        api = Api(session, server.url)
        await install_crd(api, operator)
        journal_path = tmp_path / "journal.db"
        journal = await SqliteJournal.open(journal_path, synchronous="NORMAL")

        def keys_of(uid: str, step: str) -> list[str]:
            """The keys `step` was called under for `uid`, round 0 first, by generation."""
            found = [k for k in service.calls if k.startswith(f"{uid}:") and step in k]
            return sorted(found, key=lambda k: (k.count(":"), k))

        settings = fast_settings(tmp_path)
        assert not settings.leader_election
        async with (
            _closing(journal),
            _leading(kubeconfig, journal, settings, operator=operator) as controller,
        ):
            deleted, changed, late = await _changed_after_a_backup(api, db, copy, journal, service)
            # no version the engine's watch can resume from is above this one
            resume_at_most = await _revision(api)
            await server.stop()
            _restore_bumped(copy, db)
            # past every version the old server handed out, so past the resume point,
            # before the restored server is even started
            assert _store_revision(db) > resume_at_most
            await server.start()
            assert await api.get(f"{WIDGETS}/created-after") is None  # the backup's state
            changed_now = await api.get(f"{WIDGETS}/changed-after")
            assert changed_now is not None
            assert changed_now["metadata"]["generation"] == 1

            async def converged() -> bool:
                return (
                    await _state_of(journal, late["metadata"]["uid"]) == DELETED
                    and await _ready(api, "deleted-after", 1)
                    and await _ready(api, "changed-after", 1)
                    and service.registered.get("changed-after") == {"size": 1}
                )

            await eventually(converged, "the restored state reconciled", within=20)
            await asyncio.sleep(0.5)  # room for a needless extra round, which would show below
            # the watch was refused as compacted, never as too large
            assert _restarts(controller, RestartReason.EXPIRED) >= 1
            assert _restarts(controller, RestartReason.TOO_LARGE) == 0
            # the deleted one is live again, the changed one at an older generation
            uid = changed["metadata"]["uid"]
            assert await _restored_uids(journal) == {deleted["metadata"]["uid"], uid}
            assert "created-after" not in service.registered
            assert len(keys_of(late["metadata"]["uid"], "unregister")) == 1
            assert service.registered["deleted-after"] == {"size": 1}
            first, again = keys_of(deleted["metadata"]["uid"], ":register")
            assert first == f"{deleted['metadata']['uid']}:1:register"
            assert again.startswith(f"{deleted['metadata']['uid']}:1:register:")
            assert await _state_of(journal, deleted["metadata"]["uid"]) == READY
            once, twice, rerun = keys_of(uid, ":register")
            assert (once, twice) == (f"{uid}:1:register", f"{uid}:2:register")
            assert rerun.startswith(f"{uid}:1:register:")
            # 2 calls before the backup, 3 after it, 3 after the restore, each once
            assert len(service.calls) == 8, service.calls
            assert all(count == 1 for count in service.calls.values()), service.calls
    await assert_checked_and_verified(
        journal_path, widget_operator(ExternalService(), config_map=False)
    )


async def test_without_the_bump_a_lone_watched_kind_misses_the_restore(tmp_path: Path) -> None:
    """The same, the plain copy put back instead: other writes take the restored server's
    revision past the engine's resume point before the engine reconnects (the restored
    server is started on another port for them first). The watch then resumes without an
    error, and the engine never learns of the restored state: the case the bump is for."""
    db, copy, kubeconfig = tmp_path / "api.db", tmp_path / "backup.db", tmp_path / "kubeconfig"
    server = _Server(db, _free_port(), kubeconfig)
    service = ExternalService()
    operator = widget_operator(service, config_map=False)
    await server.start()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(server.stop)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        api = Api(session, server.url)
        await install_crd(api, operator)
        journal = await SqliteJournal.open(tmp_path / "journal.db", synchronous="NORMAL")
        async with (
            _closing(journal),
            _leading(kubeconfig, journal, fast_settings(tmp_path), operator=operator) as controller,
        ):
            _, _, late = await _changed_after_a_backup(api, db, copy, journal, service)
            resume_at_most = await _revision(api)
            await server.stop()
            _restore(copy, db)
            aside = _Server(db, _free_port(), tmp_path / "aside.kubeconfig")
            await aside.start()
            try:
                other = Api(session, aside.url)
                assert await _revision(other) < resume_at_most  # a watch would be 504 now
                filler = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "filler"}}
                status, _ = await other.request("POST", CONFIGMAPS, filler)
                assert status == 201
                while await _revision(other) <= resume_at_most:
                    await other.merge(f"{CONFIGMAPS}/filler", {"data": {"n": str(uuid4())}})
            finally:
                await aside.stop()
            await server.start()
            assert await _revision(api) > resume_at_most  # before the engine reconnects
            await api.create_widget("canary", size=7)
            await eventually(lambda: _ready(api, "canary", 1), "the watch resumed")
            await asyncio.sleep(0.5)
            # resumed without an error: nothing relisted, nothing of the restore journaled
            assert _restarts(controller, RestartReason.EXPIRED) == 0
            assert _restarts(controller, RestartReason.TOO_LARGE) == 0
            assert await _restored_uids(journal) == set()
            assert await api.get(f"{WIDGETS}/created-after") is None
            assert await _state_of(journal, late["metadata"]["uid"]) == READY
            assert await api.get(f"{WIDGETS}/deleted-after") is not None
            assert service.registered == {
                "changed-after": {"size": 2},
                "created-after": {"size": 5},
                "canary": {"size": 7},
            }
