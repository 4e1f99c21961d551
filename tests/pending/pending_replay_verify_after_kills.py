"""Pending (not collected by the suite: run it by path) until `engine replay --verify`
finishes on every journal the engine writes across kills.

The defect: on a journal written by the engine killed at the crash points C1-C7 and C4/C7
again on a spec-change re-provision (tests/e2e/test_fault_crash_points.py, phases 1-2),
`engine replay --verify` never returns. The replayed run ends by cancelling the
reconciles still running (`engine/replay/replayed_run.py`, `_Process.stop`), and one of
them stays cancelling forever, awaiting a future inside `Reconciler.reconcile`
(`engine/runtime/reconcile/reconciler.py`, the `_passes` call). The journal such a run
left is kept as an export, `journals/crash_points_replay_hangs.jsonl` (`engine journal
import` rebuilds it, checksums included); it passes `engine journal check`.

    .venv/bin/pytest -q -p no:cacheprovider tests/pending/pending_replay_verify_after_kills.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import cli
from tests.support.history import journal_check
from tests.support.history_checks import replay_verify

EXPORT = Path(__file__).parent / "journals" / "crash_points_replay_hangs.jsonl"


async def test_replay_verify_finishes_on_a_journal_written_across_crash_points(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.db"
    imported = await asyncio.to_thread(
        CliRunner().invoke, cli, ["journal", "import", str(EXPORT), "--to", str(journal)]
    )
    assert imported.exit_code == 0, imported.output
    code, out = await journal_check(journal)
    assert code == 0, out
    code, out = await replay_verify(journal, within=60)
    assert code == 0, out
