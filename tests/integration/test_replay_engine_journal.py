"""A journal the real engine wrote (embedded API server, real HTTP) replays offline:
--verify agrees with the unchanged operator, names the first differing position for a
changed one, calls no effect, and two replays print the same bytes."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import cli
from engine.fsm import events as ev
from engine.journal.sqlite import SqliteJournal
from engine.runtime.reconcile.handler_context import Context
from tests.integration.reconcile_support import (
    WIDGETS,
    ExternalService,
    eventually,
    running_engine,
    widget_operator,
)

REPLAY_SERVICE = ExternalService()
UNCHANGED = widget_operator(REPLAY_SERVICE)


async def _provision_then_audit(ctx: Context) -> None:
    await UNCHANGED.provision(ctx)

    async def audit(key: str) -> None:
        return None

    await ctx.effect("audit", audit)


WITH_AUDIT_STEP = replace(UNCHANGED, provision=_provision_then_audit)
HERE = "tests.integration.test_replay_engine_journal"
BACKOFF = ["--backoff-base", "0.01", "--backoff-cap", "1.0"]  # fast_settings' policy


async def _record_a_lifecycle(tmp_path: Path) -> Path:
    async with running_engine(tmp_path) as engine:
        await engine.api.create_widget("delta", size=2)

        async def at(generation: int) -> bool:
            widget = await engine.widget("delta")
            status = (widget or {}).get("status") or {}
            return status.get("phase") == "Ready" and status.get("observedGeneration") == generation

        await eventually(lambda: at(1), "delta Ready at generation 1")
        await engine.api.merge(f"{WIDGETS}/delta", {"spec": {"size": 4}})
        await eventually(lambda: at(2), "delta Ready at generation 2")
        await engine.api.delete(f"{WIDGETS}/delta")

        async def gone() -> bool:
            return await engine.widget("delta") is None

        await eventually(gone, "delta deleted")
    return tmp_path / "journal.db"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


async def _engine(*args: str) -> tuple[int, str]:
    """The CLI in a thread: it runs its own event loop."""
    return await asyncio.to_thread(_run, *args)


async def test_engine_journal_verifies_replays_stably_and_flags_a_changed_handler(
    tmp_path: Path,
) -> None:
    db = await _record_a_lifecycle(tmp_path)

    code, report = await _engine(
        "replay", str(db), "--verify", "--operator", f"{HERE}:UNCHANGED", *BACKOFF
    )
    assert code == 0, report
    assert "no divergence" in report
    assert " 0 handler runs" not in report
    assert REPLAY_SERVICE.calls == {}  # replay performed no effect

    code, report = await _engine(
        "replay", str(db), "--verify", "--operator", f"{HERE}:WITH_AUDIT_STEP", *BACKOFF
    )
    assert code == 1
    journal = await SqliteJournal.open(db, readonly=True)
    try:
        records = [r async for r in journal.read_all()]
    finally:
        await journal.close()
    first_provision_end = next(
        r
        for r in records
        if r.type == ev.EFFECT_SUCCEEDED and str(r.data.get("key", "")).endswith(":1:provision")
    )
    assert f"first divergence at position {first_provision_end.position}:" in report
    assert "one more step" in report
    assert ":1:audit" in report

    for fmt in ("table", "json", "mermaid", "html"):
        first = await _engine("replay", str(db), "--format", fmt)
        second = await _engine("replay", str(db), "--format", fmt)
        assert first[0] == 0, first[1]
        assert first == second
    code, text = await _engine(
        "replay", str(db), "--resource", "default/delta", "--format", "mermaid"
    )
    assert code == 0
    assert "Finalizing --> Deleted" in text
