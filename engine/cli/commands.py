"""The subcommands, each in its own module under engine/cli/, imported only when used.

Importing every subcommand costs about a second and a half (the Kubernetes client, the
API server, the benchmarks); `engine run` after a crash should not pay for `engine bench`.
"""

from __future__ import annotations

import importlib

import click

from engine.cli.start_collector import paused

SUBCOMMANDS = {
    "apiserver": "engine.cli.apiserver_cmd",
    "bench": "engine.cli.bench_cmd",
    "crd": "engine.cli.crd_cmd",
    "demo": "engine.cli.demo_cmd",
    "example-service": "engine.cli.example_service_cmd",
    "fsm": "engine.cli.fsm_cmd",
    "init": "engine.cli.init_cmd",
    "journal": "engine.cli.journal_cmd",
    "manifests": "engine.cli.manifests_cmd",
    "release-finalizer": "engine.cli.release_finalizer_cmd",
    "replay": "engine.cli.replay_cmd",
    "run": "engine.cli.run_cmd",
    "shards": "engine.cli.shards_cmd",
    "ui": "engine.cli.ui_cmd",
    "why": "engine.cli.why_cmd",
}
"""Command name → the module whose `command` attribute is that click command."""


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module when the subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = SUBCOMMANDS.get(cmd_name)
        if module_name is None:
            return super().get_command(ctx, cmd_name)
        with paused():  # imports only: nothing for the collector to find (start_collector)
            command = importlib.import_module(module_name).command
        if not isinstance(command, click.Command):  # pragma: no cover - a wiring bug
            raise TypeError(f"{module_name}.command is not a click command")
        return command
