"""Every subcommand module is wired, and none is imported until it is used."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from engine.cli.commands import SUBCOMMANDS
from engine.cli.main import cli


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_each_subcommand_resolves_to_its_click_command(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert command.name == name


def test_a_subcommand_does_not_import_the_others() -> None:
    probe = (
        "import sys\n"
        "from engine.cli.main import cli\n"
        "cli.main(['fsm', '--format', 'dot'], standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.startswith('engine.cli.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = result.stdout.strip().splitlines()[-1]
    assert "engine.cli.fsm_cmd" in loaded
    assert "engine.cli.bench_cmd" not in loaded
    assert "engine.cli.run_cmd" not in loaded
