"""The list of subcommands; each lives in its own module under engine/cli/."""

from __future__ import annotations

import click

from engine.cli import (
    apiserver_cmd,
    bench_cmd,
    demo_cmd,
    example_service_cmd,
    fsm_cmd,
    journal_cmd,
    release_finalizer_cmd,
    replay_cmd,
    run_cmd,
    why_cmd,
)


def register(group: click.Group) -> None:
    """Add every subcommand to `group`."""
    for command in (
        journal_cmd.command,
        demo_cmd.command,
        bench_cmd.command,
        example_service_cmd.command,
        fsm_cmd.command,
        apiserver_cmd.command,
        run_cmd.command,
        replay_cmd.command,
        why_cmd.command,
        release_finalizer_cmd.command,
    ):
        group.add_command(command)
