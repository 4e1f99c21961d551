"""`engine ui --journal PATH`: serve the timeline of a journal (read-only), updated live
over server-sent events as a running engine appends to it."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click
from aiohttp import web

from engine.journal.errors import JournalError
from engine.journal.sqlite import SqliteJournal
from engine.ui.routes import timeline_app


class BadInput(click.ClickException):
    """A bad file or argument: one line, exit code 2."""

    exit_code = 2


@click.command(name="ui")
@click.option(
    "--journal",
    required=True,
    type=click.Path(path_type=Path, readable=False),
    help="The journal file (e.g. STATE_DIR/journal.db).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8090, show_default=True, help="Port; 0 picks a free one.")
@click.option("--jaeger-url", metavar="URL", help="Link trace ids to this Jaeger.")
def command(journal: Path, host: str, port: int, jaeger_url: str | None) -> None:
    """Serve the timeline page of JOURNAL at http://HOST:PORT/, live; Ctrl-C stops."""
    if not 0 <= port <= 65535:
        raise BadInput(f"--port {port} is not a port: use 0..65535")
    try:
        asyncio.run(_check(journal))
    except JournalError as bad:
        raise BadInput(str(bad)) from None
    try:
        asyncio.run(_serve(journal, host=host, port=port, jaeger_url=jaeger_url))
    except OSError as bad:
        raise BadInput(f"cannot listen on {host}:{port}: {bad.strerror}") from None


async def _check(journal: Path) -> None:
    """Fail early, with the journal's own one-line error, on a file that is no journal."""
    opened = await SqliteJournal.open(journal, readonly=True)
    await opened.close()


async def _serve(journal: Path, *, host: str, port: int, jaeger_url: str | None) -> None:
    app = timeline_app(journal, jaeger_url=jaeger_url)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        click.echo(f"timeline of {journal} at http://{host}:{bound}/ (Ctrl-C stops)")
        stopping = asyncio.Event()
        # SIGTERM (a service manager, a test) stops as cleanly as Ctrl-C
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
        await stopping.wait()
    finally:
        await runner.cleanup()
