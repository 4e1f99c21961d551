from __future__ import annotations

import subprocess
import sys


def run_engine(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], capture_output=True, text=True, timeout=60
    )


def test_unknown_flag_is_one_clear_line_and_exit_2() -> None:
    result = run_engine("--no-such-flag")
    assert result.returncode == 2
    assert "No such option" in result.stderr
    assert "--no-such-flag" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_subcommand_names_it() -> None:
    result = run_engine("frobnicate")
    assert result.returncode == 2
    assert "frobnicate" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_prints() -> None:
    result = run_engine("--version")
    assert result.returncode == 0
    assert "engine" in result.stdout
