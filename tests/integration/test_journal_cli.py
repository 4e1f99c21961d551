"""`engine journal check|export|import`, `engine demo`, `engine bench journal`."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ENGINE = [sys.executable, "-m", "engine"]
BENCH_KEYS = {
    "raw_insert_eps",
    "append_eps_c1",
    "append_eps_c16",
    "append_eps_c256",
    "append_p50_ms_c1",
    "append_p99_ms_c1",
    "raw_read_eps",
    "replay_eps",
    "ratio_append",
    "ratio_replay",
    "replay_fold_eps",
    "replay_json_s",
    "replay_table_s",
    "replay_peak_rss_mb",
    "replay_resource_s",
    "check_s",
}


def run_engine(*args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix = (
        [] if user is None else ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups"]
    )
    return subprocess.run(
        [*prefix, *ENGINE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr


@pytest.fixture(scope="module")
def journal_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "journal.db"
    result = run_engine("demo", "--journal", str(path))
    assert result.returncode == 0, result.stderr
    assert "chain verified: 10 records" in result.stdout
    assert "s3cr3t" not in result.stdout
    return path


def copy_of(journal_file: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy.db"
    shutil.copy(journal_file, target)
    return target


def test_check_passes_a_sound_journal(journal_file: Path) -> None:
    result = run_engine("journal", "check", str(journal_file))
    assert result.returncode == 0, result.stderr
    assert "ok, 10 records" in result.stdout


def test_check_fails_a_flipped_bit_naming_the_position(journal_file: Path, tmp_path: Path) -> None:
    path = copy_of(journal_file, tmp_path)
    content = bytearray(path.read_bytes())
    content[content.index(b"Pending") + 1] ^= 0x01
    path.write_bytes(bytes(content))
    assert_one_clear_line(run_engine("journal", "check", str(path)), str(path), "position")


def test_check_fails_a_truncated_journal(journal_file: Path, tmp_path: Path) -> None:
    path = copy_of(journal_file, tmp_path)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    assert_one_clear_line(run_engine("journal", "check", str(path)), str(path))


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        pytest.param(b"not a database at all\n" * 50, "not an SQLite database", id="text"),
        pytest.param(None, "another program", id="foreign-sqlite"),
    ],
)
def test_check_refuses_a_file_that_is_not_a_journal(
    tmp_path: Path, content: bytes | None, needle: str
) -> None:
    path = tmp_path / "other.db"
    if content is None:
        connection = sqlite3.connect(path)
        connection.execute("CREATE TABLE t (x)")
        connection.commit()
        connection.close()
    else:
        path.write_bytes(content)
    assert_one_clear_line(run_engine("journal", "check", str(path)), str(path), needle)


def test_check_refuses_a_directory(tmp_path: Path) -> None:
    assert_one_clear_line(run_engine("journal", "check", str(tmp_path)), "is a directory")


def test_export_then_import_keeps_positions_and_checksums(
    journal_file: Path, tmp_path: Path
) -> None:
    exported = tmp_path / "bug-report.jsonl"
    result = run_engine("journal", "export", str(journal_file), "--to", str(exported))
    assert result.returncode == 0, result.stderr
    assert oct(exported.stat().st_mode & 0o777) == "0o600"
    rebuilt = tmp_path / "rebuilt" / "journal.db"
    result = run_engine("journal", "import", str(exported), "--to", str(rebuilt))
    assert result.returncode == 0, result.stderr
    again = tmp_path / "again.jsonl"
    assert run_engine("journal", "export", str(rebuilt), "--to", str(again)).returncode == 0
    assert again.read_text() == exported.read_text()
    records = [json.loads(line) for line in exported.read_text().splitlines()[1:]]
    assert [r["position"] for r in records] == list(range(1, 11))
    refused = run_engine("journal", "import", str(exported), "--to", str(rebuilt))
    assert_one_clear_line(refused, "empty journal")


def test_an_export_keeps_the_record_layout_version_older_engines_import(
    journal_file: Path, tmp_path: Path
) -> None:
    # schema 2 added an index only: the export says 1, as the fixtures from before it do
    exported = tmp_path / "bug-report.jsonl"
    assert run_engine("journal", "export", str(journal_file), "--to", str(exported)).returncode == 0
    lines = exported.read_text().splitlines()
    assert json.loads(lines[0]) == {"format": "engine-journal-export", "schema_version": 1}
    newer = tmp_path / "newer.jsonl"
    header = json.dumps({"format": "engine-journal-export", "schema_version": 2})
    newer.write_text("\n".join([header, *lines[1:]]) + "\n")
    refused = run_engine("journal", "import", str(newer), "--to", str(tmp_path / "j.db"))
    assert_one_clear_line(refused, "comes from a newer engine")


def test_import_refuses_a_file_that_is_not_an_export(tmp_path: Path) -> None:
    source = tmp_path / "x.jsonl"
    source.write_text('{"hello": 1}\n')
    result = run_engine("journal", "import", str(source), "--to", str(tmp_path / "j.db"))
    assert_one_clear_line(result, "is not a journal export")


def other_user() -> str | None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    try:
        return pwd.getpwnam("nobody").pw_name
    except KeyError:
        return None


@pytest.mark.skipif(other_user() is None, reason="needs root to run a command as nobody")
def test_unreadable_and_read_only_journals_are_named(journal_file: Path) -> None:
    shared = Path(tempfile.mkdtemp(prefix="engine-journal-perm-"))  # traversable by nobody
    os.chmod(shared, 0o755)
    try:
        check_as_other_user(copy_of(journal_file, shared))
    finally:
        shutil.rmtree(shared)


def check_as_other_user(path: Path) -> None:
    os.chmod(path, 0o600)  # owned by root: nobody can neither read nor write it
    user = other_user()
    assert_one_clear_line(
        run_engine("journal", "check", str(path), user=user), str(path), "not readable"
    )
    os.chmod(path, 0o644)  # readable, but the file and its directory are read-only to nobody
    result = run_engine("journal", "check", str(path), user=user)
    assert result.returncode == 0, result.stderr
    refused = run_engine("journal", "import", str(path), "--to", str(path), user=user)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr


def test_bench_journal_json_has_exactly_the_documented_keys() -> None:
    result = run_engine("bench", "journal", "--json", "--events", "2000")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) == BENCH_KEYS
    assert all(value > 0 for value in figures.values())


def test_bench_journal_plain_output_also_shows_the_replay_fold_rate() -> None:
    result = run_engine("bench", "journal", "--events", "2000")
    assert result.returncode == 0, result.stderr
    assert "replay_fold_eps" in result.stdout
