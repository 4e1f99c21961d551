"""The PostgreSQL journal from outside: two engine processes appending to one journal,
`engine journal copy` between SQLite and PostgreSQL, bad URLs at the CLI and for
`engine run`, and `engine run` driven by kubectl on a journal kept in PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.journal.postgres import PostgresJournal
from tests.e2e import test_engine_run as run_support
from tests.e2e.kubectl import needs_kubectl
from tests.support.postgres import postgres_schemas, postgres_server, postgres_url

__all__ = ["postgres_schemas", "postgres_server", "postgres_url"]
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ENGINE = [sys.executable, "-m", "engine"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


async def test_two_processes_append_to_one_journal_gap_free(postgres_url: str) -> None:
    await (await PostgresJournal.open(postgres_url)).close()  # created once, before the race
    writers = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.e2e.journal_writer", postgres_url, name, "400"),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for name in ("a", "b")
    ]
    for writer in writers:  # both are connected before either appends
        assert writer.stdout is not None
        assert await asyncio.wait_for(writer.stdout.readline(), 60) == b"ready\n"
    results = await asyncio.gather(
        *(asyncio.wait_for(writer.communicate(b"go\n"), 120) for writer in writers)
    )
    outputs = [(out.decode(), err.decode()) for out, err in results]
    for writer, (_out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
    mine = [json.loads(out) for out, _err in outputs]
    assert sorted(mine[0] + mine[1]) == list(range(1, 801))
    journal = await PostgresJournal.open(postgres_url, readonly=True)
    try:
        assert await journal.verify() == 800
        shared = await journal.read_stream("shared")
        assert [r.stream_version for r in shared] == list(range(1, 401))
        assert {r.data["writer"] for r in shared} == {"a", "b"}
        interleaved = [r.data["writer"] async for r in journal.read_all()]
        assert interleaved != sorted(interleaved)  # the two processes' commits did overlap
    finally:
        await journal.close()


def test_copy_moves_a_sqlite_journal_into_postgres_and_back(
    postgres_url: str, tmp_path: Path
) -> None:
    original = tmp_path / "original.db"
    made = run(*ENGINE, "demo", "--journal", str(original))
    assert made.returncode == 0, made.stderr
    into = run(*ENGINE, "journal", "copy", str(original), postgres_url)
    assert into.returncode == 0, into.stderr
    assert "copied" in into.stdout
    assert postgres_url.split("@")[0].split(":")[-1] not in into.stdout  # no password shown
    checked = run(*ENGINE, "journal", "check", "--journal", postgres_url)
    assert checked.returncode == 0, checked.stderr
    back = tmp_path / "back.db"
    out = run(*ENGINE, "journal", "copy", postgres_url, f"sqlite:///{back}")
    assert out.returncode == 0, out.stderr
    exports = []
    for source in (original, back):
        target = tmp_path / f"{source.stem}.jsonl"
        result = run(*ENGINE, "journal", "export", str(source), "--to", str(target))
        assert result.returncode == 0, result.stderr
        exports.append(target.read_text())
    assert exports[0] == exports[1]
    assert len(exports[0].splitlines()) > 10
    head = [line.rsplit("chain head ", 1)[1] for line in (into.stdout, out.stdout)]
    assert head[0] == head[1]


def test_copy_refuses_a_target_that_has_records(postgres_url: str, tmp_path: Path) -> None:
    original = tmp_path / "original.db"
    assert run(*ENGINE, "demo", "--journal", str(original)).returncode == 0
    assert run(*ENGINE, "journal", "copy", str(original), postgres_url).returncode == 0
    again = run(*ENGINE, "journal", "copy", str(original), postgres_url)
    assert_one_clear_line(again, "import needs an empty journal")


def _with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    credentials, host = rest.split("@", 1)
    return f"{scheme}://{credentials.split(':')[0]}:{password}@{host}"


BAD_URLS = [
    pytest.param("unreachable", "cannot reach the PostgreSQL journal", id="unreachable"),
    pytest.param("password", "refused the login", id="wrong-password"),
    pytest.param("foreign", "holds tables of another program", id="foreign-schema"),
]


def bad_url(kind: str, postgres_url: str) -> str:
    """A journal URL that is bad in the way `kind` names."""
    if kind == "unreachable":
        return "postgresql://engine:secret@127.0.0.1:1/journal"
    if kind == "password":
        return _with_password(postgres_url, "not-the-password")
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE orders (id int)")
    return postgres_url


@pytest.mark.parametrize(("kind", "needle"), BAD_URLS)
def test_check_names_a_bad_journal_url_in_one_line(
    postgres_url: str, kind: str, needle: str
) -> None:
    result = run(*ENGINE, "journal", "check", "--journal", bad_url(kind, postgres_url))
    assert_one_clear_line(result, needle)
    assert "secret" not in result.stderr
    assert "not-the-password" not in result.stderr


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        *BAD_URLS,
        pytest.param("scheme", "neither postgresql:// nor sqlite:///", id="scheme"),
    ],
)
def test_engine_run_with_a_bad_journal_url_exits_2_in_one_line(
    postgres_url: str, kind: str, needle: str, tmp_path: Path
) -> None:
    url = "mysql://db/journal" if kind == "scheme" else bad_url(kind, postgres_url)
    result = run(
        *ENGINE, "run", "--local", "--state-dir", str(tmp_path / "state"), "--no-samples",
        "--duration", "20", "--plain", "--health-port", "0",
        env={"ENGINE_JOURNAL_URL": url},
    )  # fmt: skip
    assert_one_clear_line(result, needle)
    assert "secret" not in result.stderr
    assert "not-the-password" not in result.stderr


@needs_kubectl
def test_engine_run_on_a_postgres_journal_resumes_without_repeating_effects(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGINE_JOURNAL_URL", postgres_url)  # the engine child's environment
    state = tmp_path / "state"
    site = run_support.SITE.format(name="pg", domain="pg.example.com")
    names = (*run_support.SAMPLES, "pg")
    with run_support.engine_run(state, tmp_path / "run1.log") as engine:
        engine.kubectl.ok("apply", "-f", "-", stdin=site)
        run_support.wait_for(
            "every Site is Ready", run_support.all_ready(engine, names), log=engine.log
        )
    assert not (state / "journal.db").exists()
    with run_support.engine_run(state, tmp_path / "run2.log") as engine:
        run_support.wait_for("Ready again", run_support.all_ready(engine, names), log=engine.log)
        time.sleep(1.0)  # time for any wrongly repeated effect to reach the registry
        applied = engine.registry("/applied")["counts"]
        assert set(applied.values()) == {1}  # type: ignore[union-attr]
    checked = run(*ENGINE, "journal", "check", "--journal", postgres_url)
    assert checked.returncode == 0, checked.stderr
    streams = asyncio.run(_streams(postgres_url))
    assert any("/Site/default/pg#" in stream for stream in streams), streams


async def _streams(url: str) -> list[str]:
    journal = await PostgresJournal.open(url, readonly=True)
    try:
        return await journal.streams()
    finally:
        await journal.close()


def test_bench_journal_adds_the_postgres_figures(postgres_server: str) -> None:
    result = run(*ENGINE, "bench", "journal", "--json", "--events", "300",
                 "--postgres-url", postgres_server)  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures["postgres"]) == {
        "append_eps_c1",
        "append_eps_c16",
        "append_eps_c256",
        "append_p50_ms_c1",
        "append_p99_ms_c1",
        "replay_eps",
        "replay_events",
    }
    assert all(value > 0 for value in figures["postgres"].values())
    assert figures["append_eps_c1"] > 0  # the SQLite figures are still there
    import psycopg

    with psycopg.connect(postgres_server) as connection:
        left = connection.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'engine_bench_%'"
        ).fetchone()
    assert left == (0,)  # its schemas are dropped


def test_bench_journal_names_an_unreachable_postgres_in_one_line() -> None:
    result = run(*ENGINE, "bench", "journal", "--events", "300",
                 "--postgres-url", "postgresql://engine:secret@127.0.0.1:1/bench")  # fmt: skip
    assert_one_clear_line(result, "cannot reach the PostgreSQL journal")
