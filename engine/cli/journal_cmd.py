"""`engine journal …`: check, export, import and copy journals.

A journal is named by a path, `sqlite:///path` or a `postgresql://…` URL. `check`
verifies a whole journal (SQLite quick_check, every checksum, the chain head); `export`
writes JSON lines for a bug report; `import` rebuilds a journal from them with the same
positions and checksums; `copy` moves a journal between backends the same way.
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
from engine.journal.codec import record_from_json, record_to_json
from engine.journal.location import describe, open_journal
from engine.journal.schema import SCHEMA_VERSION

EXPORT_FORMAT = "engine-journal-export"


class BadInput(click.ClickException):
    """A bad file or argument: one line, exit code 2."""

    exit_code = 2


@click.group(name="journal")
def command() -> None:
    """Inspect and move journals (check, export, import, copy)."""


@command.command(name="check")
@click.argument("path", required=False)
@click.option(
    "--journal", "url", help="The journal to check, instead of PATH: a path or postgresql://…"
)
def check(path: str | None, url: str | None) -> None:
    """Verify every record of the journal at PATH; exit 2 if it is damaged or foreign."""
    if (path is None) == (url is None):
        raise click.UsageError("name one journal: PATH or --journal URL")
    location = url or str(path)
    count, checksum = asyncio.run(_check(location))
    click.echo(f"journal {describe(location)}: ok, {count} records, chain head {checksum[:16]}")


async def _check(location: str) -> tuple[int, str]:
    journal = await open_journal(location, readonly=True)
    try:
        count = await journal.verify()
        return count, journal.head.checksum
    finally:
        await journal.close()


@command.command(name="copy")
@click.argument("source")
@click.argument("target")
def copy(source: str, target: str) -> None:
    """Copy every record of journal SOURCE into the new or empty journal TARGET.

    Either may be a path, sqlite:///path or postgresql://…; positions, terms and
    checksums stay the same, and TARGET is verified after the copy.
    """
    count, checksum = asyncio.run(_copy(source, target))
    click.echo(
        f"copied {count} records from {describe(source)} to {describe(target)}, "
        f"chain head {checksum[:16]}"
    )


async def _copy(source: str, target: str) -> tuple[int, str]:
    reading = await open_journal(source, readonly=True)
    try:
        records = [record async for record in reading.read_all(batch_size=5000)]
    finally:
        await reading.close()
    writing = await open_journal(target)
    try:
        await writing.import_records(records)
        count = await writing.verify()
        return count, writing.head.checksum
    except ValueError as bad:
        raise BadInput(str(bad)) from None
    finally:
        await writing.close()


@command.command(name="export")
@click.argument("path")
@click.option("--to", "target", required=True, type=click.Path(path_type=Path, readable=False))
def export(path: str, target: Path) -> None:
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
    click.echo(f"exported {count} records from {describe(path)} to {target}")


async def _export(path: str, out: IO[str]) -> int:
    journal = await open_journal(path, readonly=True)
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
@click.option("--to", "target", required=True, help="The new journal: a path or postgresql://…")
def import_(source: Path, target: str) -> None:
    """Rebuild a journal at --to from an export, keeping positions and checksums."""
    records = list(_read_export(source))
    count = asyncio.run(_import(target, records))
    click.echo(f"imported {count} records from {source} into {describe(target)}")


async def _import(target: str, records: list[Record]) -> int:
    journal = await open_journal(target)
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
