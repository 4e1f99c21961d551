"""The test kit's handler environment: one provision or finalize of an operator the
project does not ship, against in-memory parts, with the real effect runner's keys,
idempotency and outcomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.testing import HandlerEnvironment, SpecRefused
from tests.support.book_operator import book_operator


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # the operator's own configuration (where its external effect writes), not the engine
    monkeypatch.setenv("BOOK_LEDGER", str(tmp_path / "ledger"))
    return tmp_path / "ledger"


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


@pytest.fixture
def env(tmp_path: Path, ledger: Path) -> HandlerEnvironment:
    return HandlerEnvironment(book_operator(tmp_path / "operator"))


async def test_provision_applies_the_child_calls_the_effect_and_ends_ready(
    env: HandlerEnvironment, ledger: Path
) -> None:
    run = await env.provision({"title": "Dune", "copies": 2}, name="dune")
    assert run.outcome == "succeeded"
    assert run.phase == "Ready"
    [child] = run.children
    assert child["metadata"]["name"] == "dune-card"
    assert child["metadata"]["namespace"] == "default"
    assert child["metadata"]["ownerReferences"][0]["uid"] == "uid-dune"
    assert child["data"] == {"title": "Dune", "copies": "2"}
    assert run.effect_keys() == ["uid-dune:1:shelve"]
    assert files_in(ledger) == ["uid-dune_1_shelve.json"]


async def test_a_second_run_of_the_same_generation_calls_nothing_again(
    env: HandlerEnvironment,
) -> None:
    await env.provision({"title": "Dune"}, name="dune")
    again = await env.provision({"title": "Dune"}, name="dune")
    assert again.outcome == "succeeded"
    assert again.children == ()
    assert again.effects == ()
    newer = await env.provision({"title": "Dune II"}, name="dune", generation=2)
    assert newer.effect_keys() == ["uid-dune:2:shelve"]


async def test_a_permanent_error_fails_with_its_reason_and_calls_nothing(
    env: HandlerEnvironment, ledger: Path
) -> None:
    run = await env.provision({"title": "forbidden"}, name="bad")
    assert run.outcome == "failed"
    assert run.phase == "Failed"
    assert run.reason is not None
    assert "this title cannot be shelved" in run.reason
    failed = next(c for c in run.status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True"
    assert run.children == ()
    assert files_in(ledger) == []


async def test_a_retryable_failure_is_requeued_and_the_retry_skips_the_applied_child(
    env: HandlerEnvironment, ledger: Path
) -> None:
    first = await env.provision({"title": "flaky"}, name="flaky")
    assert first.outcome == "retry"
    assert first.phase == "Provisioning"
    assert first.retry_after is not None
    assert first.retry_after >= 5.0  # the effect's RetryableError(delay=5) is a lower bound
    assert len(first.children) == 1
    touch(ledger / "unflake")
    env.clock.advance(first.retry_after)
    second = await env.provision({"title": "flaky"}, name="flaky")
    assert second.outcome == "succeeded"
    assert second.children == ()  # applied in the first attempt: not applied again
    assert second.effect_keys() == ["uid-flaky:1:shelve"]


async def test_finalize_calls_its_effect_under_its_own_key(env: HandlerEnvironment) -> None:
    await env.provision({"title": "Dune"}, name="dune")
    run = await env.finalize({"title": "Dune"}, name="dune")
    assert run.outcome == "succeeded"
    assert run.phase == "Deleted"
    assert run.effect_keys() == ["uid-dune:1:unshelve"]
    assert run.effects[0].result == {"file": "uid-dune_1_unshelve.json"}


async def test_a_spec_the_schema_refuses_is_refused_before_the_handler(
    env: HandlerEnvironment, ledger: Path
) -> None:
    with pytest.raises(SpecRefused, match=r"spec\.title"):
        await env.provision({"title": "x" * 41}, name="long")
    assert env.cluster.applied == []
