"""`engine fsm` prints the diagram of the table; `engine bench fsm` reports memory."""

from __future__ import annotations

import json

from click.testing import CliRunner

from engine.cli.fsm_cmd import bench_command, command
from engine.fsm import TRANSITIONS


def test_mermaid_diagram_has_every_transition_of_the_table() -> None:
    result = CliRunner().invoke(command, ["--format", "mermaid"])
    assert result.exit_code == 0
    assert result.output.startswith("stateDiagram-v2\n    [*] --> Pending\n")
    for row in TRANSITIONS:
        edge = next(
            line for line in result.output.splitlines() if f"{row.source} --> {row.dest}:" in line
        )
        assert row.trigger in edge
    assert "Deleted --> [*]" in result.output


def test_dot_diagram_has_every_transition_of_the_table() -> None:
    result = CliRunner().invoke(command, ["--format", "dot"])
    assert result.exit_code == 0
    assert result.output.startswith("digraph lifecycle {")
    for row in TRANSITIONS:
        assert f'"{row.source}" -> "{row.dest}"' in result.output


def test_unknown_format_is_one_clear_error() -> None:
    result = CliRunner().invoke(command, ["--format", "svg"])
    assert result.exit_code == 2
    assert "svg" in result.output
    assert "Traceback" not in result.output


def test_bench_reports_bytes_per_resource_as_json() -> None:
    result = CliRunner().invoke(bench_command, ["--resources", "200", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["resources"] == 200
    assert figures["bytes_per_resource"] > 0
    assert figures["machine_bytes"] > 0
