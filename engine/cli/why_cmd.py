"""`engine why NS/NAME JOURNAL`: why a resource is not Ready, in plain sentences.

Reads only that resource's streams (through the stream index) and the supervisor's
findings, never the whole journal into memory. With `--operator REF` only that
operator's kind is considered (a journal may hold several kinds with one namespace/name).

Exit codes: 0 answered, 2 bad input (a missing, foreign or corrupt journal, an unknown
resource, a bad --now).
"""

from __future__ import annotations

from pathlib import Path

import click

from engine.cli.operator_ref import load_operator
from engine.cli.replay_cmd import BadInput, parse_bound
from engine.fsm.errors import FsmError
from engine.identity import StreamId
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
@click.option(
    "--operator",
    "operator_ref",
    default=None,
    metavar="REF",
    help="Only this operator's kind (module:ATTR or file.py:ATTR); default: every kind.",
)
def command(resource: str, journal: Path, now: str | None, operator_ref: str | None) -> None:
    """Explain the state of RESOURCE from the journal at JOURNAL."""
    position, moment = parse_bound(now, "--now")
    if position is not None:
        raise BadInput(f"--now {now!r} must be a time, for example 2026-01-01T00:00:00Z")
    kind = load_operator(operator_ref).resource.kind_ref if operator_ref is not None else None
    try:
        with StreamHistory(journal) as history:
            streams = sorted(history.streams(resource))
            if kind is not None:
                streams = [s for s in streams if StreamId.parse(s).belongs_to(kind)]
                if not streams:
                    raise UnknownResource(resource, [])
            findings = history.reader.read_types(SUPERVISOR_TYPES)
            for stream in streams:
                records, start = history.records(stream)
                lines = explain(stream, records, findings=findings, now=moment, start=start)
                click.echo("\n".join(lines))
    except (UnknownResource, FsmError, JournalError) as bad:
        raise BadInput(str(bad)) from None
