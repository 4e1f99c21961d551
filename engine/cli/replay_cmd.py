"""`engine replay JOURNAL`: the timeline of every resource, as a table, JSON, a Mermaid
diagram or one HTML page; `--verify` re-drives fold, decide and the operator's handlers
over the journal and reports the first position where today's code differs.

Exit codes: 0 done (and, with --verify, no divergence), 1 a divergence, 2 bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from engine.cli.operator_ref import operator_option
from engine.fsm.errors import FsmError
from engine.journal.errors import JournalError
from engine.journal.offline_reader import OfflineReader
from engine.replay.chunked import FORMATS as CHUNKED_FORMATS
from engine.replay.chunked import WORKERS_ABOVE, ChunkPool, Rendering, default_workers
from engine.replay.driver import (
    StreamHistory,
    UnknownResource,
    stream_timelines,
)
from engine.replay.render_json import json_chunks, json_document_utf8
from engine.replay.render_table import DEFAULT_WIDTH, table_chunks
from engine.replay.timeline import Window

if TYPE_CHECKING:
    from engine.effects.backoff import BackoffPolicy

# Only what a plain replay (a table or JSON) needs is imported here: `--verify` (the
# live loop, the operator), `--format timeline|html|mermaid` and the progress bar (rich)
# import theirs when used, so `engine replay --resource` starts in a fraction of a second.

FORMATS = ("table", "json", "mermaid", "html", "timeline")
PROGRESS_ABOVE = 100_000
BACKOFF_BASE = 0.005
BACKOFF_CAP = 1000.0
"""The defaults of `BackoffPolicy` (`engine.effects.backoff`), tested equal to them."""
OUTPUT_BLOCK = 1 << 18
"""Characters gathered before each write to stdout."""


class BadInput(click.ClickException):
    """A bad file or argument: one line, exit code 2."""

    exit_code = 2


class Diverged(click.ClickException):
    """`--verify` found the code differing from the journal: exit code 1."""

    exit_code = 1


def parse_bound(text: str | None, flag: str) -> tuple[int | None, datetime | None]:
    """`--since/--until` as a position (digits) or an ISO-8601 time with a zone."""
    if text is None:
        return None, None
    if text.isdigit():
        return int(text), None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(
            f"{flag} {text!r} is neither a position nor an ISO-8601 time "
            "(for example 2026-01-01T00:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise BadInput(f"{flag} {text!r} needs a time zone, for example a trailing Z for UTC")
    return None, moment


@contextmanager
def progress_bar(path: Path) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for a journal of more than 100,000 records on a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    import asyncio

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from engine.replay.source import record_count

    total = asyncio.run(record_count(path))
    if total <= PROGRESS_ABOVE:
        yield None
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("replaying", total=total)
        yield lambda done: bar.update(task, completed=done)


@click.command(name="replay")
@click.argument("journal", type=click.Path(path_type=Path, readable=False))
@click.option("--resource", metavar="NS/NAME", help="Only this resource (NAME if cluster-scoped).")
@click.option("--since", metavar="POSITION|TIME", help="Show records from here on.")
@click.option("--until", metavar="POSITION|TIME", help="Replay only up to here.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--jaeger-url", metavar="URL", help="Link trace ids to this Jaeger (html).")
@click.option("--width", default=DEFAULT_WIDTH, show_default=True, help="Table width.")
@click.option("--verify", is_flag=True, help="Re-drive fold, decide and the handlers; report.")
@click.option(
    "--archive",
    "archives",
    multiple=True,
    type=click.Path(path_type=Path, readable=False),
    metavar="SEGMENT",
    help="Also show the history compacted into this archive segment (repeatable).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    help="Processes that fold and render a table or JSON "
    "(default: 2 above 100,000 records, else 1).",
)
@operator_option("The operator whose handlers --verify re-runs.")
@click.option(
    "--backoff-base",
    default=BACKOFF_BASE,
    show_default=True,
    help="The engine's backoff base (s), to re-check recorded retry delays.",
)
@click.option("--backoff-cap", default=BACKOFF_CAP, show_default=True, help="Its backoff cap (s).")
def command(
    journal: Path,
    resource: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
    jaeger_url: str | None,
    width: int,
    archives: tuple[Path, ...],
    verify: bool,
    workers: int | None,
    operator_ref: str | None,
    backoff_base: float,
    backoff_cap: float,
) -> None:
    """Replay the journal at JOURNAL offline: no effect runs, nothing is written."""
    if fmt == "timeline":
        if since is not None or until is not None:
            raise BadInput("--since/--until do not apply to --format timeline: zoom the page")
        _timeline(journal, resource, jaeger_url)
        return
    if verify:
        from engine.effects.backoff import BackoffPolicy

        try:
            backoff = BackoffPolicy(base=backoff_base, cap=backoff_cap)
        except ValueError as bad:
            raise BadInput(str(bad)) from None
        _verify(journal, resource, operator_ref, backoff)
        return
    since_position, since_time = parse_bound(since, "--since")
    until_position, until_time = parse_bound(until, "--until")
    window = Window(since_position, since_time, until_position, until_time)
    chosen = _workers(journal, workers, fmt=fmt, resource=resource, archives=archives)
    with ExitStack() as stack:
        # the workers fork first, before this process opens the journal or a thread
        pool = stack.enter_context(ChunkPool(journal, chosen)) if chosen > 1 else None
        try:
            history = stack.enter_context(StreamHistory(journal, archive=archives))
        except JournalError as bad:
            raise BadInput(str(bad)) from None
        try:
            streams = history.streams(resource)
            with progress_bar(journal) as progress:
                if pool is not None:
                    pieces = pool.encoded(streams, Rendering(fmt, width, window), progress=progress)
                    chunks = json_document_utf8(pieces) if fmt == "json" else pieces
                    for piece in chunks:  # a worker's chunk is a block already
                        click.echo(piece, nl=False)
                    return
                _write(
                    history,
                    streams,
                    fmt,
                    window=window,
                    progress=progress,
                    options=(width, jaeger_url, f"Replay of {journal.name}"),
                )
        except (UnknownResource, FsmError, JournalError) as bad:
            raise BadInput(str(bad)) from None


def _workers(
    journal: Path, asked: int | None, *, fmt: str, resource: str | None, archives: tuple[Path, ...]
) -> int:
    """How many worker processes fold and render: `asked`, else 2 for a whole table or
    JSON replay of a journal above `WORKERS_ABOVE` records; 1 (this process alone) for
    one resource, an archive, or a format that needs every timeline at once."""
    if fmt not in CHUNKED_FORMATS or resource is not None or archives:
        return 1
    if asked is not None:
        return asked
    try:
        with OfflineReader.open(journal) as reader:
            records = reader.head.position
    except JournalError as bad:
        raise BadInput(str(bad)) from None
    return default_workers() if records > WORKERS_ABOVE else 1


def _write(
    history: StreamHistory,
    streams: Iterable[str],
    fmt: str,
    *,
    window: Window,
    progress: Callable[[int], None] | None,
    options: tuple[int, str | None, str],
) -> None:
    """Fold and write the streams one at a time (mermaid and html need them all)."""
    width, jaeger_url, title = options
    timelines = stream_timelines(history, streams, window=window, progress=progress)
    chunks: Iterable[str]
    if fmt == "json":
        chunks = json_chunks(timelines)
    elif fmt == "mermaid":
        from engine.replay.render_mermaid import render_mermaid

        chunks = [render_mermaid(tuple(timelines))]
    elif fmt == "html":
        from engine.replay.render_html import render_html

        chunks = [render_html(tuple(timelines), title=title, jaeger_url=jaeger_url)]
    else:
        chunks = table_chunks(timelines, width=width)
    for block in _blocks(chunks):
        # a table or JSON escapes every control character itself: written as UTF-8 bytes,
        # which click passes through (a `str` it would scan for ANSI codes first)
        click.echo(block.encode() if fmt in CHUNKED_FORMATS else block, nl=False)


def _blocks(chunks: Iterable[str]) -> Iterator[str]:
    """`chunks` joined into blocks of about `OUTPUT_BLOCK` characters (fewer writes)."""
    pending: list[str] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= OUTPUT_BLOCK:
            yield "".join(pending)
            pending.clear()
            size = 0
    if pending:
        yield "".join(pending)


def _timeline(journal: Path, resource: str | None, jaeger_url: str | None) -> None:
    """The timeline page (engine.ui): lanes, attempts, waits, deadlocks, then the tables."""
    import asyncio

    from engine.ui.loader import load_picture
    from engine.ui.page import render_page

    try:
        picture, records = asyncio.run(load_picture(journal))
    except (FsmError, JournalError) as bad:
        raise BadInput(str(bad)) from None
    if resource is not None and not picture.lanes_of(resource):
        raise BadInput(f"no resource {resource} in {journal}: use NS/NAME (NAME if cluster-scoped)")
    title = f"Timeline of {journal.name}" + (f": {resource}" if resource else "")
    page = render_page(picture, records, title=title, jaeger_url=jaeger_url, resource=resource)
    click.echo(page, nl=False)


def _verify(
    journal: Path, resource: str | None, operator_ref: str | None, backoff: BackoffPolicy
) -> None:
    import asyncio

    from engine.cli.operator_ref import load_operator
    from engine.replay.verify import ReplayPolicy, verify_journal

    operator = load_operator(operator_ref)
    policy = ReplayPolicy(backoff=backoff)
    try:
        with progress_bar(journal) as progress:
            report = asyncio.run(
                verify_journal(
                    journal, operator, resource=resource, policy=policy, progress=progress
                )
            )
    except (UnknownResource, FsmError, JournalError) as bad:
        raise BadInput(str(bad)) from None
    click.echo(
        f"verified {report.records} records in {report.streams} streams through the live "
        f"reconcile loop: {report.reconciles} reconciles re-run, {report.compared} records "
        "compared"
    )
    if report.versions:
        written = ", ".join(
            f"{version or '(none recorded)'}: {count}" for version, count in report.versions
        )
        click.echo(f"records by handler code version: {written}; replayed: {report.code_version}")
    first = report.divergence
    if first is None:
        click.echo("no divergence: the code makes the decisions and effects the journal recorded")
        return
    click.echo(f"first divergence at {first.describe()}")
    if report.diverging_version is not None:
        click.echo(
            "the journal's record there was written by handler code version "
            f"{report.diverging_version or '(none recorded)'}; the code replayed is "
            f"{report.code_version}"
        )
    where = f"position {first.position}" if first.position is not None else "the journal's end"
    raise Diverged(f"the code diverges from the journal at {where}")
