"""`engine journal …`: check, export and import journal files.

`check` verifies a whole file (SQLite quick_check, every checksum, the chain head);
`export` writes JSON lines for a bug report; `import` rebuilds a journal from them with
the same positions and checksums.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from engine.journal import Record
from engine.journal.chain_check import check_journal
from engine.journal.codec import record_from_json, record_to_json
from engine.journal.schema import SCHEMA_VERSION
from engine.journal.sqlite import SqliteJournal

EXPORT_FORMAT = "engine-journal-export"


class BadInput(click.ClickException):
    """A bad file or argument: one line, exit code 2."""

    exit_code = 2


@click.group(name="journal")
def command() -> None:
    """Inspect and move journal files (check, export, import)."""


@command.command(name="check")
@click.argument("path", type=click.Path(path_type=Path, readable=False))
def check(path: Path) -> None:
    """Verify every record of the journal at PATH; exit 2 if it is damaged or foreign."""
    result = check_journal(path)
    archived = (
        f" (+{result.archived} archived in {result.segments} segments, verified across the cut)"
        if result.segments
        else ""
    )
    click.echo(
        f"journal {path}: ok, {result.records} records{archived}, "
        f"chain head {result.head_checksum[:16]}"
    )


@command.command(name="export")
@click.argument("path", type=click.Path(path_type=Path, readable=False))
@click.option("--to", "target", required=True, type=click.Path(path_type=Path, readable=False))
def export(path: Path, target: Path) -> None:
    """Write every record of the journal at PATH to a JSON-lines file (mode 0600)."""
    if target.exists():
        raise BadInput(f"{target} already exists: choose a new file name for the export")
    try:
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as bad:
        raise BadInput(f"cannot create {target}: {bad.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        try:
            count = asyncio.run(_export(path, out))
        except BaseException:
            out.close()
            target.unlink()
            raise
    click.echo(f"exported {count} records from {path} to {target}")


async def _export(path: Path, out: IO[str]) -> int:
    journal = await SqliteJournal.open(path, readonly=True)
    try:
        header = {"format": EXPORT_FORMAT, "schema_version": SCHEMA_VERSION}
        out.write(json.dumps(header) + "\n")
        count = 0
        async for record in journal.read_all(batch_size=5000):
            out.write(json.dumps(record_to_json(record), ensure_ascii=False) + "\n")
            count += 1
        return count
    finally:
        await journal.close()


@command.command(name="import")
@click.argument("source", type=click.Path(path_type=Path, readable=False))
@click.option("--to", "target", required=True, type=click.Path(path_type=Path, readable=False))
def import_(source: Path, target: Path) -> None:
    """Rebuild a journal at --to from an export, keeping positions and checksums."""
    records = list(_read_export(source))
    count = asyncio.run(_import(target, records))
    click.echo(f"imported {count} records from {source} into {target}")


async def _import(target: Path, records: list[Record]) -> int:
    journal = await SqliteJournal.open(target)
    try:
        return await journal.import_records(records)
    except ValueError as bad:
        raise BadInput(str(bad)) from None
    finally:
        await journal.close()


def _read_export(source: Path) -> Iterator[Record]:
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as bad:
        raise BadInput(f"cannot read the export {source}: {bad}") from None
    header = _parse(source, 1, lines[0] if lines else "")
    if header.get("format") != EXPORT_FORMAT:
        raise BadInput(f"{source} is not a journal export (no {EXPORT_FORMAT} header line)")
    if int(header.get("schema_version", 0)) > SCHEMA_VERSION:
        raise BadInput(f"{source} comes from a newer engine: import it with that version")
    for number, line in enumerate(lines[1:], start=2):
        if line.strip():
            try:
                yield record_from_json(_parse(source, number, line))
            except (KeyError, TypeError, ValueError) as bad:
                raise BadInput(f"{source} line {number} is not a journal record: {bad}") from None


def _parse(source: Path, number: int, line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        raise BadInput(f"{source} line {number} is not JSON") from None
    if not isinstance(value, dict):
        raise BadInput(f"{source} line {number} is not a JSON object")
    return value
