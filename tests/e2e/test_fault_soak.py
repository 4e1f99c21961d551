"""The soak's short form: `engine bench soak` (the real command), one iteration of a
10-Site workload: a SIGKILL of the engine at a random moment during creates, updates and
deletes, a restart to convergence, and every history check; every violation count is 0.
(One iteration: each costs two engine starts and a replay besides the servers' start-up;
26 s measured with the machine's load average about 14.) The long form (500 Sites, 200
iterations) is a command to run, not a test (docs/reliability.md)."""

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


def test_a_soak_iteration_with_a_random_kill_shows_no_violation() -> None:
    result = CliRunner().invoke(
        cli, ["bench", "soak", "--iterations", "1", "--resources", "10", "--seed", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["iterations"] == 1
    assert figures["kills"] == 1
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
