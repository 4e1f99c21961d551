"""The test kit's pytest fixtures over real HTTP: an embedded API server with the
operator's CRD (kubectl uses its kubeconfig), and the real engine running an operator the
project does not ship in the test's event loop, with its wait helpers and journal."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from engine import Operator
from engine.testing import ClusterRequestError, EmbeddedCluster, RunningOperator, WaitTimeout
from tests.support.book_operator import book_operator

KUBECTL = shutil.which("kubectl")


@pytest.fixture
def engine_operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Operator:
    monkeypatch.setenv("BOOK_LEDGER", str(tmp_path / "ledger"))
    return book_operator(tmp_path / "operator")


def kubectl(cluster: EmbeddedCluster, *args: str) -> str:
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")
async def test_the_cluster_fixture_serves_the_crd_to_kubectl(
    engine_cluster: EmbeddedCluster,
) -> None:
    await engine_cluster.create({"metadata": {"name": "dune"}, "spec": {"title": "Dune"}})
    listed = await asyncio.to_thread(kubectl, engine_cluster, "get", "books", "-o", "name")
    assert listed.split() == ["book.library.test/dune"]


async def test_the_cluster_refuses_what_the_schema_refuses(engine_cluster: EmbeddedCluster) -> None:
    with pytest.raises(ClusterRequestError) as refused:
        await engine_cluster.create({"metadata": {"name": "x"}, "spec": {"copies": 2}})
    assert refused.value.status == 422


async def test_the_runner_takes_a_book_to_ready_and_through_deletion(
    engine_runner: RunningOperator, tmp_path: Path
) -> None:
    cluster = engine_runner.cluster
    await cluster.create({"metadata": {"name": "dune"}, "spec": {"title": "Dune"}})
    obj = await engine_runner.wait_for_phase("dune", "Ready")
    assert obj["status"]["observedGeneration"] == 1
    assert engine_runner.state_of("dune") == "Ready"
    card = await cluster.request("GET", "/api/v1/namespaces/default/configmaps/dune-card")
    assert card["data"] == {"title": "Dune", "copies": "1"}
    await cluster.delete("dune")
    await engine_runner.wait_until_gone("dune")
    types = await engine_runner.record_types("dune")
    assert types[0] == "Observed"
    assert "EffectSucceeded" in types
    ledger = sorted(await asyncio.to_thread(os.listdir, tmp_path / "ledger"))
    assert [name.split("_")[-1] for name in ledger] == ["shelve.json", "unshelve.json"]


async def test_a_permanent_failure_is_waited_for_as_failed(engine_runner: RunningOperator) -> None:
    await engine_runner.cluster.create(
        {"metadata": {"name": "nope"}, "spec": {"title": "forbidden"}}
    )
    obj = await engine_runner.wait_for_phase("nope", "Failed")
    assert "this title cannot be shelved" in obj["status"]["reason"]
    await engine_runner.wait_for_state("nope", "Failed")


async def test_a_wait_that_does_not_hold_says_what_it_saw(engine_runner: RunningOperator) -> None:
    with pytest.raises(WaitTimeout, match="absent"):
        await engine_runner.wait_for_phase("never", "Ready", within=0.3)
