"""Bad webhook declarations and settings get one line naming the thing and what to do,
no traceback (exit code 2 for a declaration; a setting exits as every setting does)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import cli

SOURCE = """
from dataclasses import replace
from tests.support.quota_operator import OPERATOR, QUOTA

TWICE = replace(OPERATOR, resource=replace(QUOTA, served_versions=QUOTA.served_versions * 2))
NOT_A_FUNCTION = replace(OPERATOR, validate="spec.min <= spec.max")
"""


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ("TWICE", "version 'v1alpha1' of Quota is declared twice; give each served version"),
        ("NOT_A_FUNCTION", "validate is a str, not a function of one AdmissionRequest"),
    ],
)
def test_a_bad_declaration_is_one_line(tmp_path: Path, attribute: str, message: str) -> None:
    (tmp_path / "bad_quota.py").write_text(SOURCE)
    result = CliRunner().invoke(cli, ["crd", "--operator", f"{tmp_path}/bad_quota.py:{attribute}"])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_webhook_timeout_past_the_api_servers_limit_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["run", "--local", "--state-dir", str(tmp_path), "--operator",
         "tests.support.quota_operator:OPERATOR"],
        env={"ENGINE_WEBHOOK_TIMEOUT_SECONDS": "45"},
    )  # fmt: skip
    assert result.exit_code == 2, result.output  # bad input, as every settings error
    assert "'webhook_timeout_seconds' (45) must be from 1 to 30" in result.output
    assert len(result.output.strip().splitlines()) == 1
