"""`engine why NS/NAME JOURNAL`: why a resource is not Ready, in plain sentences.

With `--operator REF` only that operator's kind is considered (a journal may hold
several kinds with one namespace/name). Exit codes: 0 answered, 2 bad input (a missing,
foreign or corrupt journal, an unknown resource, a bad --now).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from engine.cli.operator_ref import load_operator
from engine.cli.replay_cmd import BadInput, parse_bound
from engine.fsm.errors import FsmError
from engine.journal.errors import JournalError
from engine.replay.driver import UnknownResource, load_streams, resource_filter
from engine.replay.timeline import ResourceId
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
    try:
        everything = asyncio.run(load_streams(journal))
    except (FsmError, JournalError) as bad:
        raise BadInput(str(bad)) from None
    keep = resource_filter(resource)
    mine = {stream: records for stream, records in everything.streams.items() if keep(stream)}
    if operator_ref is not None:
        kind = load_operator(operator_ref).resource
        mine = {
            stream: records
            for stream, records in mine.items()
            if (ResourceId.of(stream).group, ResourceId.of(stream).kind) == (kind.group, kind.kind)
        }
    if not mine:
        labels = sorted({ResourceId.of(s).label for s in everything.streams})
        raise BadInput(str(UnknownResource(resource, labels)))
    findings = [
        record
        for records in everything.streams.values()
        for record in records
        if record.type in SUPERVISOR_TYPES
    ]
    findings.sort(key=lambda r: r.position)
    try:
        for stream in sorted(mine):
            lines = explain(stream, mine[stream], findings=findings, now=moment)
            click.echo("\n".join(lines))
    except FsmError as bad:
        raise BadInput(str(bad)) from None
