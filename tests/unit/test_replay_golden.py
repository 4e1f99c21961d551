"""Golden journals (one per state-machine path) replay to the committed timelines, state
traces, diagrams, pages, explanations and verify reports, byte for byte, run after run."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import cli
from tests.fixtures.journals.make_golden import (
    EXPECTED,
    FORMATS,
    HERE,
    SCENARIOS,
    expected_outputs,
)

NAMES = sorted(SCENARIOS)


def imported(name: str, tmp_path: Path) -> Path:
    """The golden export `name` imported with `engine journal import` into a new file."""
    db = tmp_path / f"{name}.db"
    result = CliRunner().invoke(
        cli, ["journal", "import", str(HERE / f"{name}.jsonl"), "--to", str(db)]
    )
    assert result.exit_code == 0, result.output
    return db


@pytest.mark.parametrize("name", NAMES)
def test_golden_journal_replays_to_the_committed_outputs_byte_for_byte(
    name: str, tmp_path: Path
) -> None:
    db = imported(name, tmp_path)
    outputs = expected_outputs(name, db)
    assert len(outputs) == len(FORMATS) + 2
    for file_name, text in outputs.items():
        assert text == (EXPECTED / file_name).read_text(encoding="utf-8"), file_name


@pytest.mark.parametrize("name", NAMES)
def test_replay_is_byte_identical_across_runs(name: str, tmp_path: Path) -> None:
    db = imported(name, tmp_path)
    first = expected_outputs(name, db)
    second = expected_outputs(name, db)
    assert first == second


def test_each_golden_path_ends_in_its_state() -> None:
    ends = {
        "create_ready": "Ready",
        "spec_change": "Ready",
        "retry_ready": "Ready",
        "permanent_failed": "Failed",
        "delete": "Deleted",
    }
    for name, state in ends.items():
        trace = (EXPECTED / f"{name}.json").read_text(encoding="utf-8")
        assert f'"state": "{state}"' in trace
