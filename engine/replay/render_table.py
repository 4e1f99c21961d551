"""The timeline as plain-text tables, one per resource: box-drawn, no colour, at most
`--width` cells wide, written with plain string formatting.

Layout (the one these tables were first drawn with, by rich, kept byte for byte): each
column is as wide as its widest cell or header plus one space each side; while the
table is wider than `width`, the widest columns are narrowed together, down to the next
widest, and as a last resort every column evenly. A cell wider than its column wraps at
spaces (a longer word is folded). The title line is wrapped to the table's width.
Every journal value goes through `visible`, so control and bidi characters print as
escapes and cannot break the table or the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from engine.replay.cell_text import cell_width, visible, wrap
from engine.replay.timeline import StreamTimeline, TimelineRow
from engine.webhooks.decisions import WEBHOOK_STREAM_UID

DEFAULT_WIDTH = 200
MIN_WIDTH = 40
"""Narrower `--width`s are raised to this: below it the columns cannot hold a word."""
HEADERS = ("time", "pos", "event", "from → to", "effect", "att", "outcome", "trace")
PADDING = 2
"""One space either side of a cell."""
BORDERS = len(HEADERS) + 1
ARROW = "→"
"""The arrow of `from → to`: one terminal cell (tested against `cell_width`)."""


def transition_text(row: TimelineRow) -> str:
    """`from → to` when the record moved the state, else the state it left unchanged."""
    if row.trigger is not None or row.source != row.dest:
        return f"{row.source} {ARROW} {row.dest}"
    return row.dest


def row_cells(row: TimelineRow) -> tuple[str, ...]:
    """The row's eight cells, journal text made visible."""
    return _laid_out(row)[0]


def _laid_out(row: TimelineRow) -> tuple[tuple[str, ...], list[int], bool]:
    """The row's cells (`row_cells`), their widths in terminal cells, and whether each
    is as wide as it is long (see `_measure`), joining the cells once for every test."""
    cells: tuple[str, ...] = (
        row.at,
        str(row.position),
        row.event,
        transition_text(row),
        row.effect or "",
        "" if row.attempt is None else str(row.attempt),
        row.outcome,
        row.trace_id or "",
    )
    joined = "".join(cells)
    if not joined.isprintable():
        cells = tuple(visible(cell) for cell in cells)
        joined = "".join(cells)
    # the arrow of `from → to` is the one character of most rows beyond ASCII, and one
    # cell wide: such a row is measured as an ASCII one
    if joined.isascii() or joined.replace(ARROW, "").isascii():
        return cells, list(map(len, cells)), True
    sizes = [cell_width(text) for text in cells]
    return cells, sizes, sizes == list(map(len, cells))


def column_widths(natural: Sequence[int], available: int) -> list[int]:
    """Column widths (padding included) within `available` cells, from each column's
    `natural` width: the widest columns shrink first, then every column evenly."""
    widths = list(natural)
    excess = sum(widths) - available
    while excess > 0:
        widest = max(widths)
        second = max((w for w in widths if w != widest), default=0)
        if widest == second:
            break
        shrinking = [1 if w == widest else 0 for w in widths]
        widths = _reduce(excess, shrinking, [min(excess, widest - second)] * len(widths), widths)
        excess = sum(widths) - available
    if excess > 0:
        widths = _reduce(excess, [1] * len(widths), widths, widths)
    return widths


def _reduce(
    total: int, ratios: Sequence[int], maximums: Sequence[int], values: Sequence[int]
) -> list[int]:
    """Take `total` from `values` in proportion to `ratios`, at most `maximums` each."""
    ratios = [ratio if most else 0 for ratio, most in zip(ratios, maximums, strict=True)]
    remaining_ratio = sum(ratios)
    if not remaining_ratio:
        return list(values)
    remaining = total
    result: list[int] = []
    for ratio, most, value in zip(ratios, maximums, values, strict=True):
        if ratio and remaining_ratio > 0:
            taken = min(most, round(ratio * remaining / remaining_ratio))
            result.append(value - taken)
            remaining -= taken
            remaining_ratio -= ratio
        else:
            result.append(value)
    return result


def _cell_lines(text: str, size: int, width: int) -> list[str]:
    """A cell's lines, each exactly `width` cells: a space, the text wrapped, a space."""
    inner = width - PADDING
    if inner < 1:
        return [" " * width]
    if size <= inner:
        return [f" {text}{' ' * (inner - size)} "]
    return [f" {line} " for line in wrap(text, inner)]


def _row_lines(
    cells: Sequence[str],
    sizes: Sequence[int],
    widths: Sequence[int],
    *,
    bar: str,
    bottom: bool = False,
) -> list[str]:
    """One table row: its cells side by side, shorter cells filled with blank lines
    (below the text, or above it when `bottom`)."""
    columns = [
        _cell_lines(text, size, width)
        for text, size, width in zip(cells, sizes, widths, strict=True)
    ]
    height = max(len(lines) for lines in columns)
    if height == 1:
        return [f"{bar}{bar.join(lines[0] for lines in columns)}{bar}\n"]
    for column, width in zip(columns, widths, strict=True):
        blank = [" " * width] * (height - len(column))
        column[:] = blank + column if bottom else column + blank
    return [f"{bar}{bar.join(lines[line] for lines in columns)}{bar}\n" for line in range(height)]


def _rule(widths: Sequence[int], left: str, fill: str, joint: str, right: str) -> str:
    return f"{left}{joint.join(fill * width for width in widths)}{right}\n"


def table_text(timeline: StreamTimeline, *, width: int = DEFAULT_WIDTH) -> str:
    """One resource's titled table, every line at most `max(width, MIN_WIDTH)` cells."""
    width = max(width, MIN_WIDTH)
    laid_out = [_laid_out(row) for row in timeline.rows]
    natural = [
        max(column) + PADDING
        for column in zip(_HEADER_SIZES, *[sizes for _, sizes, _ in laid_out], strict=True)
    ]
    available = width - BORDERS
    widths = tuple(column_widths([min(size, available) for size in natural], available))
    frame = _frame(widths)
    inner = frame.inner
    table_width = sum(widths) + BORDERS
    resource = timeline.resource
    # a webhook stream has no lifecycle state: its records are decisions
    state = "decisions" if resource.uid == WEBHOOK_STREAM_UID else timeline.state.state
    title = visible(
        f"{resource.label} ({resource.kind} {resource.uid}): {state}, {timeline.records} records"
    )
    parts = [f"{line}\n" for line in wrap(title, table_width)]
    parts.append(frame.head)
    line = frame.line
    for cells, row_sizes, plain in laid_out:
        if all(map(int.__le__, row_sizes, inner)):
            if plain:  # a cell a character: padding to a length pads to a width
                parts.append(line % cells)
            else:
                spaced = " │ ".join(
                    f"{text}{' ' * (room - size)}"
                    for text, size, room in zip(cells, row_sizes, inner, strict=True)
                )
                parts.append(f"│ {spaced} │\n")
        else:
            parts.extend(_row_lines(cells, row_sizes, widths, bar="│"))
    parts.append(frame.foot)
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class _Frame:
    """What every table of one set of column widths shares: the top rule, header and
    middle rule (`head`), the bottom rule (`foot`), the room inside each column, and
    `line`, the %-format of a row whose cells all fit and are as wide as they are long
    (`%-Ns` pads to a length, as `str.ljust` does)."""

    head: str
    foot: str
    inner: tuple[int, ...]
    line: str


@lru_cache(maxsize=64)
def _frame(widths: tuple[int, ...]) -> _Frame:
    """The `_Frame` of `widths` (padding included); the tables of a replay mostly share one."""
    head = (
        _rule(widths, "┏", "━", "┳", "┓")
        + "".join(_row_lines(HEADERS, _HEADER_SIZES, widths, bar="┃", bottom=True))
        + _rule(widths, "┡", "━", "╇", "┩")
    )
    inner = tuple(w - PADDING for w in widths)
    line = "│ " + " │ ".join(f"%-{room}s" for room in inner) + " │\n"
    return _Frame(head, _rule(widths, "└", "─", "┴", "┘"), inner, line)


def _sizes(cells: Sequence[str]) -> list[int]:
    """The cells' widths in terminal cells."""
    return _measure(cells)[0]


def _measure(cells: Sequence[str]) -> tuple[list[int], bool]:
    """The cells' widths in terminal cells, and whether each is as wide as it is long
    (all ASCII, or wider characters such as the arrow of `from → to` taking one cell)."""
    if "".join(cells).isascii():
        return list(map(len, cells)), True
    sizes = [cell_width(text) for text in cells]
    return sizes, sizes == list(map(len, cells))


_HEADER_SIZES = _sizes(HEADERS)


def table_chunks(
    timelines: Iterable[StreamTimeline], *, width: int = DEFAULT_WIDTH
) -> Iterator[str]:
    """The text of `render_table`, one resource's table at a time."""
    for timeline in timelines:
        yield table_text(timeline, width=width)


def render_table(timelines: tuple[StreamTimeline, ...], *, width: int = DEFAULT_WIDTH) -> str:
    """One titled table per resource. Deterministic: no colour, no terminal probing."""
    return "".join(table_chunks(timelines, width=width))
