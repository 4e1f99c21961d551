"""`engine ui` and `engine replay --format timeline` on bad input: one line naming the
thing and what to do, exit code 2, no traceback; and the timeline page on good input."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import cli
from tests.unit.test_replay_golden import imported


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(["ui", "--journal", "{missing}"], "does not exist", id="ui-missing-journal"),
        pytest.param(["ui", "--journal", "{db}", "--port", "70000"], "is not a port", id="ui-port"),
        pytest.param(
            ["replay", "{db}", "--format", "timeline", "--resource", "default/nope"],
            "no resource default/nope",
            id="timeline-unknown-resource",
        ),
        pytest.param(
            ["replay", "{db}", "--format", "timeline", "--since", "3"],
            "do not apply to --format timeline",
            id="timeline-since",
        ),
        pytest.param(
            ["replay", "{missing}", "--format", "timeline"], "does not exist", id="timeline-missing"
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    arguments: list[str], message: str, tmp_path: Path
) -> None:
    db = imported("create_ready", tmp_path)
    args = [a.format(db=db, missing=tmp_path / "missing.db") for a in arguments]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_timeline_format_writes_the_page_of_one_resource(tmp_path: Path) -> None:
    db = imported("retry_ready", tmp_path)
    result = CliRunner().invoke(
        cli, ["replay", str(db), "--format", "timeline", "--resource", "default/charlie"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("<!DOCTYPE html>")
    assert "<title>Timeline of retry_ready.db: default/charlie</title>" in result.output
    assert 'class="bar o-retryable"' in result.output
