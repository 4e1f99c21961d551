"""`engine shards`: one clear line and exit code 2 without a cluster; the report's shard
map from Leases (who holds each shard, its term, who should by rendezvous hashing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import cli
from engine.cli.shards_cmd import render, shard_report
from engine.runtime.sharding.keyspace import assignment
from engine.runtime.sharding.members import LeaseView

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def lease(name: str, holder: str, term: int, age: float) -> LeaseView:
    return LeaseView(name, holder, term, NOW - timedelta(seconds=age), 15.0, "1")


def test_no_cluster_is_one_line_and_exit_2(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n"
    )
    for args in (["--kubeconfig", str(tmp_path / "absent")], ["--kubeconfig", str(kubeconfig)]):
        result = CliRunner().invoke(cli, ["shards", *args])
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "Traceback" not in result.output


def test_the_report_shows_holders_terms_and_the_expected_owner() -> None:
    leases = [
        lease("engine-member-aaa", "a", 1, 1),
        lease("engine-member-bbb", "b", 1, 60),  # expired: b is gone
        lease("engine-shard-00", "a", 3, 1),
        lease("engine-shard-01", "b", 2, 60),
    ]
    report = shard_report(leases, prefix="engine", count=None, now=NOW)
    assert [m["live"] for m in report["members"]] == [True, False]
    assert [(s["shard"], s["holder"], s["term"]) for s in report["shards"]] == [
        ("shard-00", "a", 3),
        ("shard-01", "", 2),
    ]
    assert {s["expected"] for s in report["shards"]} == set(assignment(2, ["a"]).values())
    text = render(report)
    assert "members (1 live):" in text
    assert "(moving)" in text
