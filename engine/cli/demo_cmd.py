"""`engine demo`: appends and replays a few events in a journal and prints what it did."""

from __future__ import annotations

import click


@click.command(name="demo")
def command() -> None:
    """Append and replay events in a throw-away journal, printing each step."""
