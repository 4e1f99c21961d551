"""`engine.run(operator, settings)`, the public coroutine: it reconciles against a real
embedded API server until cancelled, then stops gracefully (the journal is closed and its
lock released, so it opens again)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

import engine
from engine.journal.sqlite import SqliteJournal
from engine.testing import start_cluster
from tests.support.book_operator import book_operator


async def test_run_reconciles_until_cancelled_then_stops_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOOK_LEDGER", str(tmp_path / "ledger"))
    operator = book_operator(tmp_path / "operator")
    async with start_cluster(operator, directory=tmp_path / "cluster") as cluster:
        settings = engine.load_settings(
            env={},
            overrides={"kubeconfig": cluster.kubeconfig, "state_dir": tmp_path / "state",
                       "health_port": 0, "health_host": "127.0.0.1"},
        )  # fmt: skip
        task = asyncio.create_task(engine.run(operator, settings))
        await cluster.create({"metadata": {"name": "dune"}, "spec": {"title": "Dune"}})
        for _ in range(400):
            obj = await cluster.get("dune")
            if obj is not None and obj.get("status", {}).get("phase") == "Ready":
                break
            assert not task.done(), task.exception()
            await asyncio.sleep(0.05)
        else:
            pytest.fail("dune never became Ready under engine.run")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()
    journal = await SqliteJournal.open(tmp_path / "state" / "journal.db")  # lock released
    try:
        assert any(s.startswith("library.test/Book/default/dune#") for s in await journal.streams())
    finally:
        await journal.close()
