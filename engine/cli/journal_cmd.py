"""`engine journal …`: check, compact, migrate, export, import and copy journals.

A journal is named by a path, `sqlite:///path` or a `postgresql://…` URL. `check`
verifies a whole journal (SQLite quick_check, every checksum, the chain head, and the
archive segments across compaction cuts); `compact` archives closed history of a SQLite
journal; `migrate` brings a journal to this engine's schema, as a start does;
`export` writes JSON lines for a bug report; `import` rebuilds a journal from
them with the same positions and checksums; `copy` moves a journal between backends.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import click

from engine.fsm.errors import FsmError
from engine.journal import JournalError, Record
from engine.journal.chain_check import check_journal
from engine.journal.codec import record_from_json, record_to_json
from engine.journal.compaction import StreamCut, compact
from engine.journal.location import describe, is_postgres, open_journal, sqlite_path
from engine.journal.offline_reader import OfflineReader
from engine.journal.postgres_schema import SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION
from engine.journal.schema import SCHEMA_VERSION
from engine.replay.cell_text import visible
from engine.replay.retention import MIN_HISTORY, plan_compaction
from engine.replay.versions import VersionsReport, journal_versions

EXPORT_FORMAT = "engine-journal-export"
EXPORT_RECORDS_VERSION = 1
"""The layout of an exported record (the header's `schema_version`). Journal schema 2
added only an index, so exports stay at 1 and an engine from before it imports them;
raise this when a schema changes what a record holds."""


class BadInput(click.ClickException):
    """A bad file or argument: one line, exit code 2."""

    exit_code = 2


@click.group(name="journal")
def command() -> None:
    """Inspect, compact, migrate and move journals (check, compact, versions, migrate,
    export, import, copy)."""


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
    if is_postgres(location):
        count, checksum = asyncio.run(_check(location))
        click.echo(f"journal {describe(location)}: ok, {count} records, chain head {checksum[:16]}")
        return
    try:
        file = sqlite_path(location)
        result = check_journal(file)
    except JournalError as bad:
        raise BadInput(str(bad)) from None
    archived = (
        f" (+{result.archived} archived in {result.segments} segments, verified across the cut)"
        if result.segments
        else ""
    )
    click.echo(
        f"journal {file}: ok, {result.records} records{archived}, "
        f"chain head {result.head_checksum[:16]}"
    )


async def _check(location: str) -> tuple[int, str]:
    journal = await open_journal(location, readonly=True)
    try:
        count = await journal.verify()
        return count, journal.head.checksum
    finally:
        await journal.close()


@command.command(name="compact")
@click.argument("path", type=click.Path(path_type=Path, readable=False))
@click.option(
    "--retention",
    default="7d",
    show_default=True,
    metavar="DURATION",
    help="Archive streams Deleted longer ago than this (e.g. 30d, 12h, 90m, 0s).",
)
@click.option(
    "--min-history",
    default=MIN_HISTORY,
    show_default=True,
    type=click.IntRange(min=1),
    help="Cut a live stream only when at least this many superseded records would go.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be archived; change nothing.")
def compact_(path: Path, retention: str, min_history: int, dry_run: bool) -> None:
    """Move closed history of the journal at PATH into a compressed archive segment.

    Run it with the engine stopped (it takes the journal's writer lock). The journal is
    checked before and after; `engine replay --archive SEGMENT` still shows the history.
    """
    keep = parse_duration(retention)
    try:
        _compact(path, keep, retention=retention, min_history=min_history, dry_run=dry_run)
    except (JournalError, FsmError) as bad:
        raise BadInput(str(bad)) from None


def _compact(
    path: Path, keep: timedelta, *, retention: str, min_history: int, dry_run: bool
) -> None:
    now = datetime.now(UTC)
    check_journal(path)
    if dry_run:
        with OfflineReader.open(path) as reader:
            cuts = plan_compaction(reader, retention=keep, now=now, min_history=min_history)
            records = sum(cut.through_version - reader.cuts().get(cut.stream, 0) for cut in cuts)
        whole = sum(1 for cut in cuts if cut.state is None)
        click.echo(
            f"journal {path}: would archive {records} records: {whole} streams deleted "
            f"over {retention} ago, and the superseded history of {len(cuts) - whole} others"
        )
        return

    def plan() -> list[StreamCut]:
        with OfflineReader.open(path) as reader:
            return plan_compaction(reader, retention=keep, now=now, min_history=min_history)

    done = compact(path, plan)
    if done.segment is None:
        click.echo(f"journal {path}: nothing to archive (retention {retention})")
        return
    result = check_journal(path)
    click.echo(
        f"journal {path}: archived {done.records} records of {done.streams} streams into "
        f"{done.segment}; check ok, {result.records} records live, chain verified across the cut"
    )


@command.command(name="versions")
@click.argument("path", type=click.Path(path_type=Path, readable=False))
@click.option(
    "--archive",
    "archive",
    multiple=True,
    type=click.Path(path_type=Path, readable=False),
    help="An archive segment of this journal (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def versions(path: Path, archive: tuple[Path, ...], as_json: bool) -> None:
    """Which handler code versions the live resources of the journal at PATH still run,
    and what each `ctx.patched` change answered (docs/upgrades.md)."""
    try:
        report = journal_versions(path, archive=archive)
    except (JournalError, FsmError) as bad:
        raise BadInput(str(bad)) from None
    if as_json:
        click.echo(json.dumps(report.as_json(), sort_keys=True, indent=1))
        return
    click.echo(f"journal {path}: {len(report.resources)} live resources")
    click.echo(
        _table(("VERSION", "RESOURCES", "IN FLIGHT", "IN FLIGHT ON IT"), _version_rows(report))
    )
    patches = report.by_patch()
    if not patches:
        click.echo("no ctx.patched change recorded")
        return
    rows = [
        (visible(change), str(len(row["new"])), str(len(row["old"])), _names(row["old_in_flight"]))
        for change, row in sorted(patches.items())
    ]
    click.echo(_table(("CHANGE", "NEW PATH", "OLD PATH", "OLD PATH IN FLIGHT"), rows))
    for change, row in sorted(patches.items()):
        if not row["old_in_flight"]:
            advice = "deprecate_patch once none can start"
            click.echo(f"{visible(change)}: no old-path run is in flight ({advice})")


def _version_rows(report: VersionsReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for version, row in sorted(report.by_version().items(), key=lambda kv: kv[0]):
        rows.append(
            (
                visible(version) or "(none recorded)",
                str(len(row["resources"])),
                str(len(row["in_flight"])),
                _names(row["in_flight"]),
            )
        )
    return rows


def _names(labels: list[str], *, shown: int = 5) -> str:
    if not labels:
        return "-"
    more = f" (+{len(labels) - shown} more)" if len(labels) > shown else ""
    return ", ".join(visible(label) for label in labels[:shown]) + more


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in (header, *rows)
    ]
    return "\n".join(line.rstrip() for line in lines)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `1d12h`, `90m`, `0s` as a duration. Errors: `BadInput` (exit 2)."""
    parts = re.fullmatch(r"(?:\d+[smhdw])+", text.strip())
    if parts is None:
        raise BadInput(
            f"--retention {text!r} is not a duration: write digits and a unit (s, m, h, d, w), "
            "for example 30d or 12h"
        )
    seconds = sum(
        int(number) * _UNITS[unit] for number, unit in re.findall(r"(\d+)([smhdw])", text)
    )
    return timedelta(seconds=seconds)


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


@command.command(name="migrate")
@click.argument("path", required=False)
@click.option(
    "--journal", "url", help="The journal to migrate, instead of PATH: a path or postgresql://…"
)
def migrate(path: str | None, url: str | None) -> None:
    """Bring the journal at PATH to this engine's schema version, as a start would.

    Run it with the engine stopped (it takes the journal's writer lock). A SQLite
    journal is first copied beside itself (the warning names the copy); each migration
    is one transaction, so an interrupted one leaves the old schema.
    """
    if (path is None) == (url is None):
        raise click.UsageError("name one journal: PATH or --journal URL")
    location = url or str(path)
    asyncio.run(_migrate(location))
    version = POSTGRES_SCHEMA_VERSION if is_postgres(location) else SCHEMA_VERSION
    click.echo(f"journal {describe(location)}: at schema version {version}")


async def _migrate(location: str) -> None:
    journal = await open_journal(location)
    await journal.close()


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
        header = {"format": EXPORT_FORMAT, "schema_version": EXPORT_RECORDS_VERSION}
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
    if int(header.get("schema_version", 0)) > EXPORT_RECORDS_VERSION:
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
