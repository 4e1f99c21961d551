"""The `engine` command: one group, one module per subcommand, no traceback for users."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

import click

from engine import __version__
from engine.cli.commands import LazyGroup
from engine.journal import JournalError


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="engine")
def cli() -> None:
    """An event-sourced reconciliation engine for Kubernetes operators."""


def main() -> None:
    """Run the CLI; turn every failure into one clear line and an exit code.

    Exit codes: 0 success, 1 an unexpected internal error, 2 bad input (a wrong flag, a
    corrupt or foreign journal, an unreachable server), 130 interrupted.

    A SIGTERM that comes before a command installs its own handlers (during the imports
    and the start-up of `engine run`) ends the process with 0, as a stop asked for.
    """
    signal.signal(signal.SIGTERM, _stop_asked)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as bad:
        bad.show()
        sys.exit(bad.exit_code)
    except JournalError as bad:
        click.echo(f"error: {bad}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as unexpected:  # the last line of defence: no traceback for users
        if os.environ.get("ENGINE_DEBUG"):
            raise
        name = type(unexpected).__name__
        click.echo(
            f"internal error: {name}: {unexpected} (set ENGINE_DEBUG=1 to see the traceback)",
            err=True,
        )
        sys.exit(1)


def _stop_asked(signum: int, frame: FrameType | None) -> None:
    """SIGTERM before a command took it over: unwind (its `finally` blocks run), exit 0."""
    raise SystemExit(0)
