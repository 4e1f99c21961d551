"""The HTML page is valid, self-contained and escapes everything; `engine why` explains a
resource that is not Ready; bad input is one line and exit code 2."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import cli
from engine.fsm import events as ev
from engine.replay.render_html import render_html
from engine.replay.timeline import build_timeline
from engine.replay.why import explain
from tests.unit.test_replay_golden import imported
from tests.unit.test_replay_timeline import golden

VOID = {"meta", "br", "hr", "img", "input", "link"}


class Checker(HTMLParser):
    """Balanced tags, no scripts, no external resources; collects section ids and hrefs."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "link", "img", "iframe"):
            self.problems.append(f"<{tag}>")
        if "src" in values:
            self.problems.append("src attribute")
        if values.get("id"):
            self.ids.append(str(values["id"]))
        if tag == "a" and values.get("href"):
            self.hrefs.append(str(values["href"]))
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.problems.append(f"unbalanced </{tag}>")


def checked(page: str) -> Checker:
    checker = Checker()
    checker.feed(page)
    checker.close()
    assert checker.problems == []
    assert checker.open == []
    return checker


def test_the_page_is_valid_and_has_a_section_per_resource_with_jaeger_links() -> None:
    records = [*golden("create_ready"), *golden("delete"), *golden("permanent_failed")]
    page = render_html(build_timeline(records), jaeger_url="http://jaeger:16686/")
    assert page.startswith("<!DOCTYPE html>")
    checker = checked(page)
    assert len(checker.ids) == 3
    for name in ("default/alpha", "default/echo", "default/delta"):
        assert name in page
    traces = {r.trace_id for r in records if r.trace_id}
    assert {f"http://jaeger:16686/trace/{t}" for t in traces} <= set(checker.hrefs)


def test_hostile_journal_values_are_escaped() -> None:
    records = golden("permanent_failed")
    evil = "<script>alert(1)</script>&\"'"
    failed = next(r for r in records if r.type == "EffectFailed")
    index = records.index(failed)
    records[index] = replace(failed, data={**failed.data, "message": evil})
    records = [replace(r, stream=r.stream.replace("delta", "d<b>x")) for r in records]
    page = render_html(build_timeline(records), jaeger_url=None)
    checked(page)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "/trace/" not in page


def test_why_explains_a_resource_waiting_for_its_retry() -> None:
    records = golden("retry_ready")
    cut = next(i for i, r in enumerate(records) if r.data.get("trigger") == "effect_failed")
    prefix = records[: cut + 1]
    now = prefix[-1].at
    lines = explain(prefix[0].stream, prefix, now=now)
    text = "\n".join(lines)
    assert lines[0].startswith("default/charlie (Bucket uid-charlie) is Provisioning since")
    assert "trigger effect_failed" in lines[0]
    assert "Effect create-user (uid-charlie:1:create-user) failed 1 attempt" in text
    assert "RetryableError: create-user is busy" in text
    assert "The next retry is due at 2026-01-01T00:00:02" in text  # 2 s after the failure
    assert "No wait-for cycle" in text


def test_why_reports_stuck_and_deadlock_findings() -> None:
    records = golden("permanent_failed")
    last = records[-1]
    stuck = replace(
        last,
        position=last.position + 1,
        stream_version=last.stream_version + 1,
        type=ev.STUCK_DETECTED,
        data={"state": "Failed", "seconds": 900.0, "reason": "no progress"},
    )
    cycle = replace(
        stuck,
        stream="supervisor",
        position=last.position + 2,
        type=ev.DEADLOCK_DETECTED,
        data={"cycle": [last.stream, "example.com/Bucket/default/zulu#uid-z"]},
    )
    text = "\n".join(explain(last.stream, [*records, stuck], findings=[stuck, cycle]))
    assert "found it stuck in Failed for 900.0 s" in text
    assert "wait-for cycle (deadlock)" in text
    assert "default/delta → default/zulu → default/delta" in text
    assert "It failed because: EffectFailedPermanently" in text


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    db = imported("create_ready", tmp_path)
    foreign = tmp_path / "other.db"
    sqlite3.connect(foreign).execute("create table t (x)").connection.close()
    cases = [
        ("replay", str(tmp_path / "missing.db")),
        ("replay", str(foreign)),
        ("replay", str(db), "--resource", "default/nobody"),
        ("replay", str(db), "--since", "last tuesday"),
        ("replay", str(db), "--verify", "--operator", "nowhere:thing"),
        ("why", "default/nobody", str(db)),
        ("why", "default/alpha", str(db), "--now", "12"),
    ]
    for args in cases:
        code, output = run(*args)
        assert code == 2, (args, output)
        assert output.strip().count("\n") == 0, (args, output)
        assert "Traceback" not in output


def test_cli_verify_exits_1_with_the_first_position_on_a_changed_handler(tmp_path: Path) -> None:
    db = imported("spec_change", tmp_path)
    code, output = run(
        "replay", str(db), "--verify", "--operator", "tests.fixtures.journals.golden:EXTRA_STEP"
    )
    assert code == 1
    ended = next(
        r
        for r in golden("spec_change")
        if r.type == "EffectSucceeded" and r.data["name"] == "provision"
    )
    assert f"first divergence at position {ended.position}:" in output
    assert "one more step" in output


def test_cli_replay_filters_one_resource_and_a_window(tmp_path: Path) -> None:
    db = imported("delete", tmp_path)
    code, output = run(
        "replay",
        str(db),
        "--resource",
        "default/echo",
        "--since",
        "5",
        "--until",
        datetime(2026, 1, 1, 0, 1, tzinfo=UTC).isoformat(),
        "--format",
        "json",
    )
    assert code == 0
    assert '"position": 5' in output
    assert '"position": 4,' not in output
    assert '"state": "Ready"' in output


@pytest.mark.parametrize("fmt", ["table", "mermaid"])
def test_cli_formats_name_the_resource(fmt: str, tmp_path: Path) -> None:
    db = imported("retry_ready", tmp_path)
    code, output = run("replay", str(db), "--format", fmt)
    assert code == 0
    assert ("default/charlie" in output) if fmt == "table" else ("effect_failed" in output)
