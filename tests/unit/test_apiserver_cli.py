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


def test_without_a_kubeconfig_the_server_is_not_started(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["apiserver", "--db", str(tmp_path / "api.db")])
    assert result.exit_code == 2
    assert "Missing option '--kubeconfig'" in result.output
    assert not (tmp_path / "api.db").exists()


def _server_database(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE objects (key TEXT PRIMARY KEY, rv INTEGER, uid TEXT, body TEXT);"
            "CREATE TABLE changes (rv INTEGER PRIMARY KEY, type TEXT, key TEXT, body TEXT);"
            "CREATE TABLE meta (id INTEGER PRIMARY KEY, revision INTEGER, compacted INTEGER);"
            "INSERT INTO meta VALUES (1, 42, 0);"
        )


def test_restore_writes_the_database_with_the_revision_bumped(tmp_path: Path) -> None:
    backup = tmp_path / "backup.db"
    _server_database(backup)
    target = tmp_path / "api.db"
    result = CliRunner().invoke(
        cli, ["apiserver", "restore", str(backup), "--db", str(target), "--bump-revision", "500"]
    )
    assert result.exit_code == 0, result.output
    assert "revision 42 -> 542, compacted up to 542" in result.output
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT revision, compacted FROM meta").fetchone() == (542, 542)


def test_restore_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    backup, target = tmp_path / "backup.db", tmp_path / "api.db"
    _server_database(backup)
    target.write_bytes(b"")
    result = CliRunner().invoke(cli, ["apiserver", "restore", str(backup), "--db", str(target)])
    assert result.exit_code == 1
    assert f"{target} exists; move it away first" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(
        cli, ["apiserver", "restore", str(backup), "--db", str(target), "--bump-revision", "0"]
    )
    assert result.exit_code == 2
    assert "--bump-revision" in result.output
