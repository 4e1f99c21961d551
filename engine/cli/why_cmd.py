"""`engine why NS/NAME JOURNAL`: why a resource is not Ready, in plain sentences.

Reads only that resource's streams (through the stream index) and the supervisor's
findings, never the whole journal into memory.

Exit codes: 0 answered, 2 bad input (a missing, foreign or corrupt journal, an unknown
resource, a bad --now).
"""

from __future__ import annotations

from pathlib import Path

import click

from engine.cli.replay_cmd import BadInput, parse_bound
from engine.fsm.errors import FsmError
from engine.journal.errors import JournalError
from engine.replay.driver import StreamHistory, UnknownResource
from engine.replay.why import SUPERVISOR_TYPES, explain


@click.command(name="why")
@click.argument("resource", metavar="NS/NAME")
@click.argument("journal", type=click.Path(path_type=Path, readable=False))
@click.option(
    "--now",
    metavar="TIME",
    help="The moment to explain at (ISO-8601); default: the journal's last record.",
)
def command(resource: str, journal: Path, now: str | None) -> None:
    """Explain the state of RESOURCE from the journal at JOURNAL."""
    position, moment = parse_bound(now, "--now")
    if position is not None:
        raise BadInput(f"--now {now!r} must be a time, for example 2026-01-01T00:00:00Z")
    try:
        with StreamHistory(journal) as history:
            streams = sorted(history.streams(resource))
            findings = history.reader.read_types(SUPERVISOR_TYPES)
            for stream in streams:
                records, start = history.records(stream)
                lines = explain(stream, records, findings=findings, now=moment, start=start)
                click.echo("\n".join(lines))
    except (UnknownResource, FsmError, JournalError) as bad:
        raise BadInput(str(bad)) from None
