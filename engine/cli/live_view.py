"""What `engine run` shows while it runs: a rich Live table of every resource (state,
generation, last event, age) on a terminal, or one plain line per change otherwise (CI,
a pipe), both fed by polling a snapshot function.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.table import Table

STATE_STYLES = {
    "Ready": "green",
    "Provisioning": "yellow",
    "Pending": "cyan",
    "Finalizing": "magenta",
    "Failed": "bold red",
    "Deleted": "dim",
}


@dataclass(frozen=True)
class ViewRow:
    """One resource as the view shows it. `created_at` is epoch seconds (None: unknown)."""

    namespace: str
    name: str
    state: str
    generation: int
    last_event: str
    created_at: float | None = None
    columns: tuple[str, ...] = ()
    """Values of the operator's printer columns, in the order of `show`'s `columns`."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def age_text(seconds: float) -> str:
    """Kubernetes-style age: 42s, 3m10s, 2h5m, 4d3h."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60}s"
    if whole < 86400:
        return f"{whole // 3600}h{(whole % 3600) // 60}m"
    return f"{whole // 86400}d{(whole % 86400) // 3600}h"


def render_table(
    rows: Sequence[ViewRow], *, now: float, title: str, columns: Sequence[str] = ()
) -> Table:
    """The live table, rows sorted by namespace and name; `columns` are the headers of
    each row's printer-column values (shown after GEN)."""
    table = Table(title=title, title_justify="left", expand=False)
    for column in ("NAMESPACE", "NAME", "STATE", "GEN", *columns, "LAST EVENT", "AGE"):
        table.add_column(column, no_wrap=True)
    for row in sorted(rows, key=lambda r: (r.namespace, r.name)):
        style = STATE_STYLES.get(row.state, "")
        age = "" if row.created_at is None else age_text(now - row.created_at)
        table.add_row(
            row.namespace,
            row.name,
            f"[{style}]{row.state}[/]" if style else row.state,
            str(row.generation),
            *_padded(row.columns, len(columns)),
            row.last_event,
            age,
        )
    if not rows:
        table.add_row("", "(no resources yet)", "", "", *([""] * len(columns)), "", "")
    return table


def _padded(values: Sequence[str], width: int) -> list[str]:
    return [*values[:width], *([""] * (width - len(values[:width])))]


def plain_changes(previous: Mapping[str, ViewRow], rows: Sequence[ViewRow]) -> list[str]:
    """One line per resource whose state, generation or last event changed, or that went."""
    lines: list[str] = []
    current = {row.key: row for row in rows}
    for key in sorted(current):
        row = current[key]
        before = previous.get(key)
        if before is None or (before.state, before.generation, before.last_event) != (
            row.state,
            row.generation,
            row.last_event,
        ):
            lines.append(f"{key} {row.state} generation={row.generation} last={row.last_event}")
    lines.extend(f"{key} gone" for key in sorted(set(previous) - set(current)))
    return lines


def plain_updates(previous: dict[str, ViewRow], changed: Sequence[ViewRow]) -> list[str]:
    """One line per row of `changed` whose state, generation or last event differs from
    the one in `previous`; `previous` is updated to hold `changed`."""
    lines: list[str] = []
    for row in changed:
        before = previous.get(row.key)
        if before is None or (before.state, before.generation, before.last_event) != (
            row.state,
            row.generation,
            row.last_event,
        ):
            lines.append(f"{row.key} {row.state} generation={row.generation} last={row.last_event}")
        previous[row.key] = row
    return lines


async def show(
    snapshot: Callable[[], Sequence[ViewRow]],
    *,
    stop: asyncio.Event,
    console: Console,
    title: str,
    interval: float = 0.5,
    columns: Sequence[str] = (),
    changes: Callable[[], Sequence[ViewRow]] | None = None,
) -> None:
    """Show `snapshot()` every `interval` seconds until `stop` is set (then once more).

    Plain lines: with `changes` (the rows changed since its last call, sorted by key),
    each poll reads only those rows instead of the whole snapshot."""
    if console.is_terminal:
        with Live(console=console, auto_refresh=False, transient=False) as live:
            while True:
                live.update(
                    render_table(snapshot(), now=time.time(), title=title, columns=columns),
                    refresh=True,
                )
                if stop.is_set():
                    return
                await _wait(stop, interval)
    shown: dict[str, ViewRow] = {}
    while changes is not None:
        lines = plain_updates(shown, changes())
        if lines:  # plain text as it is: one write, no rendering
            console.file.write("".join(f"{line}\n" for line in lines))
            console.file.flush()
        if stop.is_set():
            return
        await _wait(stop, interval)
    while True:
        rows = snapshot()
        for line in plain_changes(shown, rows):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        shown = {row.key: row for row in rows}
        if stop.is_set():
            return
        await _wait(stop, interval)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
