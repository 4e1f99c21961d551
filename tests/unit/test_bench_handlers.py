"""`engine bench handlers` prints its measured figures (never asserted as targets)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from engine.cli.main import cli


def test_the_handler_bench_prints_its_figures_as_json() -> None:
    result = CliRunner().invoke(cli, ["bench", "handlers", "--runs", "5", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["runs"] == 5
    assert set(figures) == {"runs", "run_ms_mean", "run_ms_p50", "run_ms_p99",
                            "import_engine_s", "python_alone_s"}  # fmt: skip
    assert figures["run_ms_p50"] <= figures["run_ms_p99"]


def test_the_handler_bench_refuses_zero_runs() -> None:
    result = CliRunner().invoke(cli, ["bench", "handlers", "--runs", "0"])
    assert result.exit_code == 2
    assert "--runs must be >= 1" in result.output
