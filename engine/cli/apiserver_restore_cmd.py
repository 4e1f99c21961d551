"""`engine apiserver restore`: a new API server database from a backup copy, its revision
bumped and everything below marked compacted, so every client's watch from before the
restore is 410 Expired and relists (etcd's `snapshot restore --bump-revision`)."""

from __future__ import annotations

from pathlib import Path

import click

from engine.apiserver.store.restore import DEFAULT_BUMP, RestoreError, restore_database


@click.command(name="restore")
@click.argument("backup", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--db",
    "db",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The database to write (must not exist); then start `engine apiserver --db` on it.",
)
@click.option(
    "--bump-revision",
    "bump",
    default=DEFAULT_BUMP,
    show_default=True,
    type=click.IntRange(min=1),
    help="How far the revision jumps past the backup's (more than the writes since it).",
)
def command(backup: Path, db: Path, bump: int) -> None:
    """Restore the API server's database from BACKUP (a copy of its SQLite file) into a
    new file, the revision moved on by --bump-revision and everything below it marked
    compacted: a watch, or a list continued, from a version a client held before the
    restore is answered 410 Expired, and the client relists. Run it with the server
    stopped; objects keep their resourceVersions."""
    try:
        restored = restore_database(backup, db, bump=bump)
    except RestoreError as bad:
        raise click.ClickException(str(bad)) from None
    click.echo(
        f"restored {restored.objects} objects from {backup} into {db}: revision "
        f"{restored.backup_revision} -> {restored.revision}, compacted up to {restored.revision}"
    )
