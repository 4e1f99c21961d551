"""`engine apiserver` refuses bad input with one clear line and no traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import cli


def test_a_db_in_a_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["apiserver", "--db", str(tmp_path / "no" / "api.db"), "--kubeconfig", str(tmp_path / "k")],
    )
    assert result.exit_code == 1
    assert "the directory does not exist" in result.output
    assert "Traceback" not in result.output


def test_a_database_of_something_else_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE journal (x)")
    result = CliRunner().invoke(
        cli, ["apiserver", "--db", str(other), "--kubeconfig", str(tmp_path / "k")]
    )
    assert result.exit_code == 1
    assert "is not an API server database" in result.output
    assert not (tmp_path / "k").exists()
