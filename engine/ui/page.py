"""The timeline page: one self-contained HTML file (inline CSS, SVG and a small vanilla
script, no external asset). The picture and the record tables are rendered here, so it
reads without script; the script adds zoom, filters, details, lane virtualization and,
when served live, updates over server-sent events."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from html import escape
from importlib.resources import files

from engine.fsm.table import STATES
from engine.journal.record import Record
from engine.ui.lane_svg import lane_svg, overlay_svg
from engine.ui.lanes import OUTCOMES, Lane
from engine.ui.page_data import DETAIL_LIMIT, picture_json, script_json
from engine.ui.picture import Picture
from engine.ui.record_tables import record_tables
from engine.ui.summary import summarize, summary_svg, summary_text

STATIC_LANES = 100
"""Lanes drawn in the page itself (without script); the script draws any of them."""


def _asset(name: str) -> str:
    return files("engine.ui").joinpath(name).read_text(encoding="utf-8")


def axis_ticks(origin: datetime | None, start: float, end: float) -> str:
    """About eight time labels across `start`..`end` seconds, as positioned spans."""
    span = max(end - start, 1e-3)
    raw = span / 8
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    base = origin or datetime.fromtimestamp(0, UTC)
    parts = []
    tick = math.ceil(start / step) * step
    while tick <= start + span * 0.95:  # a label at the right edge would be cut
        moment = base + timedelta(seconds=tick)
        text = moment.strftime("%H:%M:%S") + (
            f".{moment.microsecond // 1000:03d}" if step < 1 else ""
        )
        left = (tick - start) / span * 100
        parts.append(f'<span class="tick" style="left:{left:.3f}%">{text}</span>')
        tick += step
    return "".join(parts)


def _legend() -> str:
    states = "".join(f'<span class="key s-{s}">{s}</span>' for s in STATES)
    outcomes = "".join(f'<span class="key o-{o}">{o.replace("_", " ")}</span>' for o in OUTCOMES)
    marks = (
        '<span class="key m-transition">transition</span><span class="key m-heal">heal</span>'
        '<span class="key m-deadlock">deadlock</span><span class="key wait">waits for</span>'
    )
    return f'<p class="legend">states {states} attempts {outcomes} {marks}</p>'


def _select(ident: str, label: str, options: list[tuple[str, str]]) -> str:
    items = "".join(
        f'<option value="{escape(value, quote=True)}">{escape(text)}</option>'
        for value, text in options
    )
    return (
        f'<label>{label} <select id="{ident}"><option value="">any</option>{items}</select></label>'
    )


def _controls(lanes: Sequence[Lane]) -> str:
    namespaces = sorted({lane.resource.namespace for lane in lanes})
    return (
        '<form id="controls" class="needs-script" onsubmit="return false">'
        '<label>name <input id="f-name" type="search" placeholder="substring"></label>'
        + _select("f-ns", "namespace", [(n, n or "(cluster)") for n in namespaces])
        + _select("f-state", "state", [(s, s) for s in STATES])
        + _select("f-outcome", "outcome", [(o, o.replace("_", " ")) for o in OUTCOMES])
        + '<label>from <input id="z-from" size="7" placeholder="s"></label>'
        '<label>to <input id="z-to" size="7" placeholder="s"></label>'
        '<button id="z-in" type="button">zoom in</button>'
        '<button id="z-out" type="button">zoom out</button>'
        '<button id="z-reset" type="button">whole journal</button>'
        '<span id="shown"></span><span id="live-status"></span></form>'
    )


def render_page(
    picture: Picture,
    records: Sequence[Record] | None,
    *,
    title: str,
    jaeger_url: str | None,
    live: bool = False,
    resource: str | None = None,
) -> str:
    """The page for every lane of `picture` (or only `resource`'s, a `ns/name`).

    `records` (every record folded into `picture`, or None) fill the record tables and
    the details panel when there are at most `DETAIL_LIMIT` of them. Deterministic.
    """
    lanes = picture.lanes_of(resource) if resource else picture.ordered()
    small = records is not None and len(records) <= DETAIL_LIMIT
    kept = None
    if small and records is not None:
        streams = {lane.resource.stream for lane in lanes}
        kept = [r for r in records if r.stream in streams]
    start, end = 0.0, max(picture.end, 1e-3) * 1.06
    drawn = lanes[:STATIC_LANES]
    summary = summarize(picture)
    origin = picture.origin.isoformat() if picture.origin is not None else "no records"
    rows = "".join(
        f'<div class="lane" data-id="{escape(lane.resource.stream, quote=True)}">'
        f'<div class="label" title="{escape(lane.resource.stream, quote=True)}">'
        f'<a href="#res-{i}">{escape(lane.resource.label)}</a> '
        f'<span class="state s-{escape(lane.state)}">{escape(lane.state)}</span></div>'
        + lane_svg(lane, start=start, end=end)
        + "</div>"
        for i, lane in enumerate(drawn)
    )
    more = (
        f'<p class="note">{len(lanes) - len(drawn)} more lanes are drawn by the page\'s script '
        "(scroll); the summary above counts all of them.</p>"
        if len(lanes) > len(drawn)
        else ""
    )
    if kept is not None:
        tables = record_tables(lanes, kept, jaeger_url=jaeger_url)
    else:
        tables = (
            f'<p class="note">{picture.records:,} records: more than {DETAIL_LIMIT:,}, so no '
            "tables here; see one resource with <code>engine replay JOURNAL --resource NS/NAME "
            "--format timeline</code>.</p>"
        )
    document = picture_json(picture, lanes, kept, live=live, jaeger_url=jaeger_url)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            '<head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>{_asset('page.css')}</style></head>",
            f'<body data-live="{int(live)}">',
            f"<header><h1>{escape(title)}</h1>",
            f'<p class="meta"><span id="counts">{len(lanes)} resources, {picture.records:,} '
            f"records</span> · origin {escape(origin)} · "
            f'<span id="span-text">{picture.end:,.3f} s</span></p></header>',
            '<section id="summary"><h2>Summary</h2>',
            f'<div class="chart">{summary_svg(summary)}</div>',
            f'<p id="summary-text">{escape(summary_text(summary))}</p>',
            _legend(),
            "</section>",
            _controls(lanes),
            '<section id="board">',
            f'<div id="axis"><span class="axis-label">resource</span><div id="ticks">'
            f"{axis_ticks(picture.origin, start, end)}</div></div>",
            f'<div id="lanes">{rows}<div id="overlay-box">'
            f"{overlay_svg(drawn, picture, start=start, end=end)}</div></div>",
            more,
            "</section>",
            '<aside id="details" hidden>'
            '<button id="details-close" type="button" aria-label="close">&times;</button>'
            '<div id="details-body"></div></aside>',
            f'<section id="tables"><h2>Records</h2>{tables}</section>',
            f'<script type="application/json" id="timeline-data">{script_json(document)}</script>',
            f"<script>{_asset('page_shapes.js')}{_asset('page.js')}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )
