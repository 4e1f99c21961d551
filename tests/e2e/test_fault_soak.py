"""The soak's short form: `engine bench soak` (the real command) over 2 iterations of a
10-Site workload, each with a SIGKILL of the engine at a random moment and every history
check after it; every violation count is 0. The long form (500 Sites, 200 iterations) is
a command to run, not a test (docs/reliability.md)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.cli.main import cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

VIOLATIONS = (
    "lost_records",
    "duplicate_successes",
    "unobserved_effects",
    "overlapping_turns",
    "canary_hits",
    "verify_failures",
    "unconverged",
)


def test_two_soak_iterations_with_random_kills_show_no_violation() -> None:
    result = CliRunner().invoke(
        cli, ["bench", "soak", "--iterations", "2", "--resources", "10", "--seed", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["iterations"] == 2
    assert figures["kills"] == 2
    assert {name: figures[name] for name in VIOLATIONS} == dict.fromkeys(VIOLATIONS, 0), figures[
        "problems"
    ]
    assert figures["records"] > 0
    assert figures["registry_calls"] >= 10  # every Site was registered at least once


@pytest.mark.parametrize("flag", ["--iterations", "--resources"])
def test_a_soak_of_nothing_is_refused_in_one_line(flag: str) -> None:
    result = CliRunner().invoke(cli, ["bench", "soak", flag, "0"])
    assert result.exit_code == 2
    assert "must be >= 1" in result.output
    assert "Traceback" not in result.output
