"""An API server restored from a backup under a running, leading engine: the restored
Lease names this replica with fewer transitions than the term it leads under now. The
engine's renewals must not carry the restored, smaller count on (another replica would
then take the same term again: two leaders under one fencing token); the Lease is
written back with the engine's current term and the engine goes on leading under it.

The backup is a copy of the embedded API server's SQLite database (SQLite's online
backup) taken during the first term; the restore stops the server, puts the copy in
place and starts it again on the same port. The engine, the API server and its
database are the real ones, over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from engine.apiserver.http.embedded import serve_apiserver
from engine.fsm import events as ev
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.watchers import connect_kubeconfig
from tests.integration.reconcile_support import (
    NAMESPACE,
    Api,
    ExternalService,
    eventually,
    fast_settings,
    install_crd,
    widget_operator,
)

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


async def test_a_restored_lease_with_fewer_transitions_does_not_take_the_term_back(
    tmp_path: Path,
) -> None:
    db, copy, kubeconfig = tmp_path / "api.db", tmp_path / "backup.db", tmp_path / "kubeconfig"
    port = _free_port()
    operator = widget_operator(ExternalService())
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
        await install_crd(api, operator)
        journal = await SqliteJournal.open(tmp_path / "journal.db", synchronous="NORMAL")
        stack.push_async_callback(journal.close)
        client = await connect_kubeconfig(kubeconfig)
        stack.push_async_callback(client.close)
        controller = Controller(
            ControllerDeps(
                operator=operator,
                settings=settings,
                api_client=client,
                journal=journal,
                handle_signals=False,
            )
        )
        task = asyncio.create_task(controller.run())

        async def stop() -> None:
            await controller.stop()
            await task

        stack.push_async_callback(stop)
        await asyncio.wait_for(controller.ready.wait(), 15)

        async def lease_spec() -> dict[str, object]:
            lease = await api.get(LEASE)
            return dict((lease or {}).get("spec") or {})

        async def held_at(term: int) -> bool:
            return (await lease_spec()).get("leaseTransitions") == term

        await eventually(lambda: held_at(1), "leading under term 1", within=10)
        identity = (await lease_spec())["holderIdentity"]
        _backup(db, copy)  # the Lease: this replica, 1 transition
        # another holder takes the Lease and never renews: this replica leads again, term 2
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        await api.merge(LEASE, {"spec": {"holderIdentity": "another", "renewTime": now}})

        async def leads_under(term: int) -> bool:
            spec = await lease_spec()
            return spec.get("holderIdentity") == identity and spec.get("leaseTransitions") == term

        await eventually(lambda: leads_under(2), "leading again under term 2", within=10)
        assert journal.term == 2

        await server.stop()
        _restore(copy, db)
        await server.start()
        restored = await lease_spec()
        assert restored.get("leaseTransitions") == 1  # the backup's, this replica holding it
        # the renewals write the term the engine leads under back, never the restored count
        await eventually(lambda: leads_under(2), "the Lease carries term 2 again", within=10)
        for _ in range(5):
            await asyncio.sleep(0.1)
            assert (await lease_spec()).get("leaseTransitions") == 2
        assert journal.term == 2
        terms = [
            record.data["term"]
            async for record in journal.read_all()
            if record.type == ev.LEADER_ELECTED
        ]
        assert terms == [1, 2]
