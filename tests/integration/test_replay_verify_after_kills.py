"""`engine replay --verify` on journals the engine wrote while it was SIGKILLed at the
crash points C1-C7, and C3-C7 again on a spec-change re-provision (the first two phases
of the crash-point test's long form, tests/e2e/long_fault_crash_points.py): twelve
interrupted attempts on two Sites, each followed by a new process whose watch relists.
The crash-point journals are kept as exports (`engine journal import` rebuilds them,
checksums included) and pass `engine journal check`.

- `journals/crash_points.jsonl` was written by the code of this tree: replay reproduces
  it, record for record.
- `journals/crash_points_earlier_code.jsonl` was written by an earlier version of the
  engine, which still journaled a Provisioning status before each provision run. Its
  replay used to never end: stopping a replayed process cancels the reconciles still
  running, and one whose provision handler had returned in the same loop turn lost that
  cancellation inside `asyncio.wait_for` and waited for ever for a record the kill had
  cut off. It must end, with the divergence the code change really makes.
- `journals/status_echo_before_its_write.jsonl` (defect D5): one Site, the engine killed
  at `status.before_patch` (Provisioning → Ready journaled, the Ready status not sent),
  then a start with `status.after_patch=sleep(0.5)`: it writes the Ready status, and the
  watch's echo of that write is journaled before the write's `StatusWritten`. Replay
  reported "the journal has StatusWritten here, the code writes nothing" (it decided on
  the echo, which already showed the status); it must verify.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import cli
from engine.cli.operator_ref import load_operator
from engine.fsm import events as ev
from engine.journal.sqlite import SqliteJournal
from engine.replay.recording import is_external
from engine.replay.verify import verify_journal
from tests.support.history import journal_check
from tests.support.history_checks import replay_verify

JOURNALS = Path(__file__).parent / "journals"

pytestmark = pytest.mark.timeout(60)


async def _imported(export: Path, tmp_path: Path) -> Path:
    journal = tmp_path / "journal.db"
    imported = await asyncio.to_thread(
        CliRunner().invoke, cli, ["journal", "import", str(export), "--to", str(journal)]
    )
    assert imported.exit_code == 0, imported.output
    code, out = await journal_check(journal)
    assert code == 0, out
    return journal


async def test_replay_verify_reproduces_a_journal_written_across_crash_points(
    tmp_path: Path,
) -> None:
    journal = await _imported(JOURNALS / "crash_points.jsonl", tmp_path)
    code, out = await replay_verify(journal, within=30)
    assert code == 0, out
    assert "verified 69 records in 2 streams" in out, out
    assert "no divergence" in out, out


async def test_replay_verify_ends_with_the_divergence_on_a_journal_earlier_code_wrote(
    tmp_path: Path,
) -> None:
    journal = await _imported(JOURNALS / "crash_points_earlier_code.jsonl", tmp_path)
    code, out = await replay_verify(journal, within=30)
    assert code == 1, out
    assert "first divergence at position 8:" in out, out
    assert "the journal has StatusWritten here, the code appends EffectStarted" in out, out


async def test_replay_verify_reproduces_a_status_write_whose_echo_the_watch_journaled_first(
    tmp_path: Path,
) -> None:
    journal = await _imported(JOURNALS / "status_echo_before_its_write.jsonl", tmp_path)
    opened = await SqliteJournal.open(journal, readonly=True)
    try:
        records = [record async for record in opened.read_all()]
    finally:
        await opened.close()
    echo, write = records[-2:]  # the watch's echo of the Ready status, then its write
    assert (echo.type, echo.data["watch_event"], echo.data["status_phase"]) == (
        ev.OBSERVED,
        "modified",
        "Ready",
    )
    assert (write.type, write.data["phase"]) == (ev.STATUS_WRITTEN, "Ready")
    report = await verify_journal(journal, load_operator(None))
    assert report.divergence is None, report.divergence.describe()
    assert report.compared == len([r for r in records if not is_external(r)])  # every one
