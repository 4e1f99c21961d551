"""`engine journal …`: check, export and import journal files."""

from __future__ import annotations

import click


@click.group(name="journal")
def command() -> None:
    """Inspect and move journal files (check, export, import)."""
