"""SVG for the lanes, drawn on the server so the page shows without script: each lane's
shapes in a viewBox of seconds (zooming only changes the viewBox), and the overlay of
wait and deadlock arrows between lanes, in percent of the track's width."""

from __future__ import annotations

from html import escape

from engine.ui.lanes import Lane
from engine.ui.picture import Picture

ROW = 28
"""A lane's height in pixels (and in viewBox units)."""
FAR = 1e7
"""Where a span that has not ended is drawn to: the viewBox clips it."""
MIN_WIDTH = 1e-4
"""A zero-length attempt still gets a bar (its non-scaling stroke gives it pixels)."""
HANDLERS = ("provision", "finalize")
"""Handler attempts take the upper half of a lane, their steps the lower half."""


def _x(value: float) -> str:
    return f"{value:.3f}"


def _shape(tag: str, position: int, css: str, title: str, *, link: bool, **attrs: str) -> str:
    """A shape; with `link`, wrapped in a link to its record's table row (for the page
    without script: the script shows the record itself, so its lanes carry no links)."""
    extra = " ".join(f'{k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    shape = (
        f'<{tag} class="{css}" data-pos="{position}" {extra}><title>{escape(title)}</title></{tag}>'
    )
    return f'<a href="#rec-{position}">{shape}</a>' if link else shape


def lane_fragment(lane: Lane, *, links: bool = False) -> str:
    """The inside of one lane's `<svg>`: state spans, attempt bars, retry gaps, markers
    (`links`: each shape links to its record's row in the tables)."""
    parts: list[str] = []
    for s in lane.spans:
        end = FAR if s.end is None else s.end
        until = "now" if s.end is None else f"+{s.end:.3f} s"
        title = f"{s.state} from +{s.start:.3f} s to {until} (position {s.position})"
        parts.append(
            _shape(
                "rect",
                s.position,
                f"span s-{s.state}",
                title,
                link=links,
                x=_x(s.start),
                y="1",
                width=_x(max(end - s.start, 0.0)),
                height=str(ROW - 2),
            )
        )
    for a in lane.attempts:
        end = a.end if a.end is not None else lane.last_at
        position = a.end_position if a.end_position is not None else a.position
        took = "" if a.end is None else f", {(a.end - a.start) * 1000:,.0f} ms"
        title = f"{a.name} attempt {a.attempt}: {a.outcome.replace('_', ' ')}{took}"
        if a.message:
            title += f" — {a.message}"
        if a.retry_delay is not None:
            title += f"; retry in {a.retry_delay:.3f} s"
        top = 4 if a.name in HANDLERS else 15
        width = max(end - a.start, MIN_WIDTH)
        # the rect shows the duration; the tick keeps an instant attempt visible
        bar = (
            f'<g class="bar o-{a.outcome}" data-pos="{position}" '
            f'data-outcome="{a.outcome}"><title>{escape(title)}</title>'
            f'<rect x="{_x(a.start)}" y="{top}" width="{_x(width)}" height="9"/>'
            f'<line x1="{_x(a.start)}" x2="{_x(a.start)}" y1="{top}" y2="{top + 9}"/></g>'
        )
        parts.append(f'<a href="#rec-{position}">{bar}</a>' if links else bar)
        if a.retry_delay is not None and a.end is not None:
            y = 8 if a.name in HANDLERS else 19
            parts.append(
                f'<line class="gap" x1="{_x(a.end)}" x2="{_x(a.end + a.retry_delay)}" '
                f'y1="{y}" y2="{y}"><title>retry delay '
                f"{a.retry_delay:.3f} s</title></line>"
            )
    for m in lane.markers:
        parts.append(
            _shape(
                "line",
                m.position,
                f"mark m-{m.kind}",
                m.text,
                link=links,
                x1=_x(m.at),
                x2=_x(m.at),
                y1="0",
                y2=str(ROW),
            )
        )
    return "".join(parts)


def lane_svg(lane: Lane, *, start: float, end: float) -> str:
    """One lane's `<svg>` showing seconds `start`..`end`."""
    return (
        f'<svg class="track" viewBox="{_x(start)} 0 {_x(max(end - start, 1e-3))} {ROW}" '
        f'preserveAspectRatio="none">{lane_fragment(lane, links=True)}</svg>'
    )


def overlay_svg(lanes: list[Lane], picture: Picture, *, start: float, end: float) -> str:
    """Arrows between the given lanes (in page order): waits, and deadlock cycles."""
    row_of = {lane.resource.label: i for i, lane in enumerate(lanes)}
    span = max(end - start, 1e-3)
    parts: list[str] = []

    def pct(at: float) -> str:
        return f"{(at - start) / span * 100:.3f}%"

    for i, lane in enumerate(lanes):
        for w in lane.waits:
            target = row_of.get(w.target)
            if target is None or target == i:
                continue
            parts.append(
                f'<line class="wait" x1="{pct(w.at)}" x2="{pct(w.at)}" '
                f'y1="{i * ROW + ROW // 2}" y2="{target * ROW + ROW // 2}" '
                f'marker-end="url(#arrow)"><title>{escape(lane.resource.label)} waits for '
                f"{escape(w.target)}</title></line>"
            )
    for d in picture.deadlocks:
        rows = [row_of.get(member) for member in d.cycle]
        if all(r is not None for r in rows):
            top = min(r for r in rows if r is not None)
            parts.append(
                f'<text class="deadlock-label" x="{pct(d.at + len(rows) * span * 0.012)}" '
                f'y="{top * ROW + 12}">deadlock</text>'
            )
        for k, member in enumerate(d.cycle):
            nxt = d.cycle[(k + 1) % len(d.cycle)]
            a, b = rows[k], rows[(k + 1) % len(rows)]
            if a is None or b is None:
                continue
            # each edge a little later than the previous, so the cycle reads as a loop
            x = pct(d.at + k * span * 0.012)
            parts.append(
                f'<line class="deadlock-edge" data-from="{escape(member, quote=True)}" '
                f'data-to="{escape(nxt, quote=True)}" x1="{x}" x2="{x}" '
                f'y1="{a * ROW + ROW // 2}" y2="{b * ROW + ROW // 2}" '
                'marker-end="url(#arrow-dead)">'
                f"<title>deadlock: {escape(member)} waits for {escape(nxt)}</title></line>"
            )
    height = max(len(lanes), 1) * ROW
    return (
        f'<svg id="overlay" height="{height}" aria-hidden="true">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z"/></marker>'
        '<marker id="arrow-dead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z"/></marker>'
        "</defs>" + "".join(parts) + "</svg>"
    )
