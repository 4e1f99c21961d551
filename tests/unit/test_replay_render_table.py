"""The replay table: aligned columns within `--width`, a titled header per resource, long
cells wrapped with nothing lost, journal control and bidi characters printed as escapes,
and the layout rich drew these tables with, byte for byte."""

from __future__ import annotations

import io
import random
from dataclasses import replace

from rich.console import Console
from rich.table import Table

from engine.replay.cell_text import cell_width, visible, wrap
from engine.replay.render_table import (
    HEADERS,
    MIN_WIDTH,
    column_widths,
    render_table,
    row_cells,
)
from engine.replay.timeline import StreamTimeline, build_timeline
from tests.unit.test_replay_timeline import golden

NAMES = ("create_ready", "delete", "permanent_failed", "retry_ready", "spec_change")
BARS = "┃│┏┳┓┡╇┩└┴┘"


def every_golden() -> tuple[StreamTimeline, ...]:
    return build_timeline([record for name in NAMES for record in golden(name)])


def tables(text: str) -> list[list[str]]:
    """The lines of each table (title lines dropped), split at each top border."""
    found: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("┏"):
            found.append([])
        if found and line[:1] in BARS:
            found[-1].append(line)
    return found


def bar_offsets(line: str) -> list[int]:
    return [index for index, char in enumerate(line) if char in BARS]


def assert_aligned(text: str, width: int) -> None:
    for lines in tables(text):
        offsets = bar_offsets(lines[0])
        assert len(offsets) == len(HEADERS) + 1
        for line in lines:
            assert bar_offsets(line) == offsets, line
            assert cell_width(line) == offsets[-1] + 1 <= max(width, MIN_WIDTH)


def test_columns_align_within_the_width_with_a_titled_header_per_resource() -> None:
    timelines = every_golden()
    for width in (40, 60, 80, 120, 200, 300):
        text = render_table(timelines, width=width)
        assert_aligned(text, width)
        assert len(tables(text)) == len(timelines)
        for timeline in timelines:
            assert f"({timeline.resource.kind} {timeline.resource.uid})" in text
        header_lines = [line for line in text.splitlines() if line.startswith("┃")]
        assert len(header_lines) >= len(timelines)


def test_a_long_cell_wraps_inside_its_column_and_loses_no_word() -> None:
    (timeline,) = build_timeline(golden("create_ready"))
    words = [f"word{n}" for n in range(120)]
    long_word = "x" * 250
    outcome = " ".join(words[:60]) + f" {long_word} " + " ".join(words[60:])
    rows = (replace(timeline.rows[0], outcome=outcome), *timeline.rows[1:])
    text = render_table((replace(timeline, rows=rows),), width=100)
    assert_aligned(text, 100)
    lines = tables(text)[0]
    start, end = bar_offsets(lines[0])[6:8]
    column = "".join(line[start + 1 : end] for line in lines[3:] if line.startswith("│"))
    assert column.split()[: len(words) + 25].count("word59") == 1
    joined = "".join(column.split())
    assert "".join(words[:60]) + long_word + "".join(words[60:]) in joined


def test_control_and_bidi_characters_in_journal_text_print_as_escapes() -> None:
    hostile = "evil\x1b[31mred\x1b]0;title\x07\nnext\rline\ttab\u202edesrever\u2066\x00\x7f\x9b"
    records = golden("permanent_failed")
    failed = next(r for r in records if r.type == "EffectFailed")
    records[records.index(failed)] = replace(failed, data={**failed.data, "message": hostile})
    records = [
        replace(r, stream=r.stream.replace("delta", hostile), trace_id=hostile) for r in records
    ]
    text = render_table(build_timeline(records), width=160)
    assert all(char.isprintable() for char in text.replace("\n", ""))
    for escape in ("\\x1b[31m", "\\u202e", "\\n", "\\x07", "\\x00"):
        assert escape in text
    assert_aligned(text, 160)
    assert text.splitlines()[0].startswith("default/evil\\x1b[31mred")


def test_visible_leaves_printable_text_alone_and_escapes_the_rest() -> None:
    assert visible("Pending → Ready, é, 漢字 🙂") == "Pending → Ready, é, 漢字 🙂"
    assert visible("a\nb\x1b\u200b\U000e0001") == "a\\nb\\x1b\\u200b\\U000e0001"


def test_wrap_moves_whole_words_folds_longer_ones_and_pads_every_line() -> None:
    assert wrap("aaa bbb ccc", 7) == ["aaa bbb", "ccc    "]
    assert wrap("abcdefghij k", 4) == ["abcd", "efgh", "ij k"]
    assert wrap("漢字漢字", 5) == ["漢字 ", "漢字 "]
    assert cell_width("漢字→é") == 6


def test_the_widest_columns_shrink_first_then_all_evenly() -> None:
    assert column_widths([10, 50, 30], 100) == [10, 50, 30]
    assert column_widths([10, 50, 30], 70) == [10, 30, 30]
    assert column_widths([10, 50, 30], 50) == [10, 20, 20]
    assert sum(column_widths([5, 5, 5, 5], 12)) == 12


def test_a_width_below_the_minimum_is_raised_to_it() -> None:
    timelines = every_golden()
    assert render_table(timelines, width=3) == render_table(timelines, width=MIN_WIDTH)


def rich_table(timeline: StreamTimeline, width: int) -> str:
    """The table as the rich-drawn renderer printed it (the layout being kept)."""
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        color_system=None,
        force_terminal=False,
        legacy_windows=False,
        emoji=False,
        highlight=False,
        markup=False,
    )
    resource = timeline.resource
    title = (
        f"{resource.label} ({resource.kind} {resource.uid}): {timeline.state.state}, "
        f"{timeline.records} records"
    )
    table = Table(title=title, title_justify="left", expand=False, safe_box=True)
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for row in timeline.rows:
        table.add_row(*row_cells(row))
    console.print(table)
    return out.getvalue()


def test_random_printable_tables_come_out_as_rich_laid_them_out() -> None:
    source = random.Random(7)
    alphabet = "abcdefgh  -:é→漢"
    timelines = every_golden()
    for _ in range(40):
        timeline = source.choice(timelines)
        rows = [
            replace(row, outcome="".join(source.choices(alphabet, k=source.choice((0, 5, 60)))))
            if source.random() < 0.3
            else row
            for row in timeline.rows
        ]
        timeline = replace(timeline, rows=tuple(rows[: source.choice((0, 2, len(rows)))]))
        width = source.choice((40, 57, 90, 133, 200))
        assert render_table((timeline,), width=width) == rich_table(timeline, width)
