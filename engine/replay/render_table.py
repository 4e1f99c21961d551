"""The timeline as plain-text tables, one per resource (rich, no colour, fixed width)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

from rich.console import Console
from rich.table import Table

from engine.replay.timeline import StreamTimeline, TimelineRow

DEFAULT_WIDTH = 200


def transition_text(row: TimelineRow) -> str:
    """`from → to` when the record moved the state, else the state it left unchanged."""
    if row.trigger is not None or row.source != row.dest:
        return f"{row.source} → {row.dest}"
    return row.dest


def table_chunks(
    timelines: Iterable[StreamTimeline], *, width: int = DEFAULT_WIDTH
) -> Iterator[str]:
    """The text of `render_table`, one resource's table at a time."""
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        color_system=None,
        force_terminal=False,
        force_interactive=False,
        legacy_windows=False,
        soft_wrap=False,
        emoji=False,
        highlight=False,
        markup=False,
    )
    for timeline in timelines:
        resource = timeline.resource
        title = (
            f"{resource.label} ({resource.kind} {resource.uid}): {timeline.state.state}, "
            f"{timeline.records} records"
        )
        table = Table(title=title, title_justify="left", expand=False, safe_box=True)
        for header in ("time", "pos", "event", "from → to", "effect", "att", "outcome", "trace"):
            table.add_column(header, overflow="fold")
        for row in timeline.rows:
            table.add_row(
                row.at,
                str(row.position),
                row.event,
                transition_text(row),
                row.effect or "",
                "" if row.attempt is None else str(row.attempt),
                row.outcome,
                row.trace_id or "",
            )
        console.print(table)
        yield out.getvalue()
        out.seek(0)
        out.truncate()


def render_table(timelines: tuple[StreamTimeline, ...], *, width: int = DEFAULT_WIDTH) -> str:
    """One titled table per resource. Deterministic: no colour, no terminal probing."""
    return "".join(table_chunks(timelines, width=width))
