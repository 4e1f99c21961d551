"""`engine release-finalizer --operator FILE:OPERATOR`: for an operator the project does
not ship, the stuck deletion of its resource is released (journaled first) with that
operator's kind and finalizer name."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.operator_ref import load_operator
from engine.journal.sqlite import SqliteJournal
from engine.testing import run_operator, start_cluster
from tests.support.book_operator import write_operator


async def test_a_stuck_book_is_released_by_its_operators_finalizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOOK_LEDGER", str(tmp_path / "ledger"))
    path = write_operator(tmp_path / "operator")
    operator = load_operator(f"{path}:OPERATOR")
    state = tmp_path / "state"
    async with start_cluster(operator, directory=tmp_path / "cluster") as cluster:
        async with run_operator(operator, cluster, state_dir=state) as running:
            await cluster.create({"metadata": {"name": "dune"}, "spec": {"title": "Dune"}})
            await running.wait_for_phase("dune", "Ready")
        # the engine is stopped: the deletion now waits on its finalizer
        await cluster.delete("dune")
        stuck = await cluster.get("dune")
        assert stuck is not None
        assert stuck["metadata"]["finalizers"] == ["library.test/finalizer"]
        env = {k: v for k, v in os.environ.items() if k != "ENGINE_OPERATOR"}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "engine", "release-finalizer", "default/dune",
             "--operator", f"{path}:OPERATOR", "--kubeconfig", str(cluster.kubeconfig),
             "--journal", str(state / "journal.db")],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "released library.test/finalizer from Book default/dune" in done.stdout
        assert await cluster.get("dune") is None
    journal = await SqliteJournal.open(state / "journal.db")
    try:
        [stream] = [s for s in await journal.streams() if s.startswith("library.test/Book/")]
        last = (await journal.read_stream(stream))[-1]
        assert last.type == "HealingApplied"
        assert last.data["action"] == "release-finalizer"
    finally:
        await journal.close()
