"""The JSON timeline is written piece by piece with the very bytes `json.dumps` gives for
the whole document: odd text, empty row lists and an empty replay included."""

from __future__ import annotations

import json
from dataclasses import replace

from engine.replay.render_json import json_chunks, render_json, timelines_json
from engine.replay.timeline import StreamTimeline, Window, build_timeline
from tests.unit.test_replay_timeline import golden

NAMES = ("create_ready", "delete", "permanent_failed", "retry_ready", "spec_change")


def reference(timelines: tuple[StreamTimeline, ...]) -> str:
    document = timelines_json(timelines)
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def every_golden() -> tuple[StreamTimeline, ...]:
    records = [record for name in NAMES for record in golden(name)]
    return build_timeline(sorted(records, key=lambda r: (r.at, r.stream)))


def test_every_golden_timeline_renders_as_json_dumps_would() -> None:
    timelines = every_golden()
    assert len(timelines) == len(NAMES)
    assert render_json(timelines) == reference(timelines)


def test_odd_text_is_escaped_as_json_dumps_escapes_it() -> None:
    (timeline,) = build_timeline(golden("permanent_failed"))
    odd = 'quote " backslash \\ tab \t nul \x00 bidi \u202e emoji 🙂 lone \ud800 é'
    rows = tuple(replace(row, outcome=odd, trace_id=odd[::-1]) for row in timeline.rows)
    timelines = (replace(timeline, rows=rows),)
    assert render_json(timelines) == reference(timelines)


def test_resources_with_no_row_in_the_window_and_an_empty_replay_match_too() -> None:
    records = golden("delete")
    timelines = build_timeline(records, Window(since_position=len(records) + 1))
    assert timelines
    assert not timelines[0].rows
    assert render_json(timelines) == reference(timelines)
    assert render_json(()) == reference(())


def test_each_resource_comes_as_its_own_piece() -> None:
    timelines = every_golden()
    assert len(list(json_chunks(timelines))) == len(timelines) + 2
