"""The timeline as one self-contained HTML page: inline CSS, no scripts, no external
assets; every journal value is escaped; trace ids link to Jaeger when a URL is given."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from engine.replay.render_table import transition_text
from engine.replay.timeline import StreamTimeline, TimelineRow

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;background:#fff}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:2em}
nav ul{columns:3;padding-left:1.2em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.transition td{background:#eef6ff}tr.failed td{background:#fff0f0}
code{font:12px ui-monospace,monospace}
.state{display:inline-block;padding:0 6px;border-radius:8px;background:#eaeef2}
.state.Ready{background:#dafbe1}.state.Failed{background:#ffd8d3}
.state.Deleted{background:#eaeef2;color:#57606a}
""".strip()

HEADERS = ("time", "pos", "event", "from → to", "effect", "att", "outcome", "trace")


def _anchor(timeline: StreamTimeline) -> str:
    return "r-" + quote(timeline.resource.stream, safe="")


def _trace_cell(trace_id: str | None, jaeger_url: str | None) -> str:
    if not trace_id:
        return "<td></td>"
    text = f"<code>{escape(trace_id)}</code>"
    if jaeger_url:
        href = f"{jaeger_url.rstrip('/')}/trace/{quote(trace_id, safe='')}"
        text = f'<a href="{escape(href, quote=True)}">{text}</a>'
    return f"<td>{text}</td>"


def _row_html(row: TimelineRow, jaeger_url: str | None) -> str:
    css = "transition" if row.trigger else ("failed" if row.event == "EffectFailed" else "")
    attempt = "" if row.attempt is None else str(row.attempt)
    cells = [
        f"<td><code>{escape(row.at)}</code></td>",
        f'<td class="num">{row.position}</td>',
        f"<td>{escape(row.event)}</td>",
        f"<td>{escape(transition_text(row))}</td>",
        f"<td>{escape(row.effect or '')}</td>",
        f'<td class="num">{attempt}</td>',
        f"<td>{escape(row.outcome)}</td>",
        _trace_cell(row.trace_id, jaeger_url),
    ]
    opening = f'<tr class="{css}">' if css else "<tr>"
    return opening + "".join(cells) + "</tr>"


def render_html(
    timelines: tuple[StreamTimeline, ...], *, title: str = "Journal replay", jaeger_url: str | None
) -> str:
    """The page. Deterministic: the same timelines and arguments give the same bytes."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{len(timelines)} resources.</p>",
        "<nav><ul>",
    ]
    for timeline in timelines:
        state = escape(timeline.state.state)
        parts.append(
            f'<li><a href="#{escape(_anchor(timeline), quote=True)}">'
            f"{escape(timeline.resource.label)}</a> "
            f'<span class="state {state}">{state}</span></li>'
        )
    parts.append("</ul></nav>")
    for timeline in timelines:
        resource = timeline.resource
        state = escape(timeline.state.state)
        parts += [
            f'<section id="{escape(_anchor(timeline), quote=True)}">',
            f"<h2>{escape(resource.label)} <small>{escape(resource.kind)} "
            f"<code>{escape(resource.uid)}</code></small> "
            f'<span class="state {state}">{state}</span></h2>',
            f"<p>{timeline.records} records; stream <code>{escape(resource.stream)}</code></p>",
            "<table>",
            "<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in HEADERS) + "</tr></thead>",
            "<tbody>",
        ]
        parts += [_row_html(row, jaeger_url) for row in timeline.rows]
        parts += ["</tbody>", "</table>", "</section>"]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
