"""The summary strip: resources per state over time, retries per minute and effect
latency percentiles, aggregated over every lane (so its cost does not grow with what
the page draws), as numbers and as a small server-side SVG."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from engine.fsm.table import STATES
from engine.ui.picture import Picture

BUCKETS = 120
HEIGHT = 60
RETRY_HEIGHT = 24


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts per state at the middle of each bucket, retries per bucket, latencies."""

    bucket_seconds: float
    per_state: dict[str, tuple[int, ...]]
    retries: tuple[int, ...]
    per_minute: tuple[int, ...]
    latency: dict[str, float]
    attempts: int

    @property
    def buckets(self) -> int:
        return len(self.retries)


def _percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a sorted, non-empty list."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize(picture: Picture, *, buckets: int = BUCKETS) -> Summary:
    """Aggregate the picture into `buckets` equal slices of its time range."""
    span = max(picture.end, 1e-3)
    width = span / buckets
    diffs = {state: [0] * (buckets + 1) for state in STATES}
    retries = [0] * buckets
    minutes = [0] * (int(span // 60) + 1)
    durations: list[float] = []
    attempts = 0

    def first_bucket(moment: float) -> int:
        # the first bucket whose middle is at or after `moment`
        return min(buckets, max(0, math.ceil(moment / width - 0.5)))

    for lane in picture.lanes.values():
        for s in lane.spans:
            counts = diffs.get(s.state)
            if counts is None:
                continue
            start = first_bucket(s.start)
            stop = buckets if s.end is None else first_bucket(s.end)
            if stop > start:
                counts[start] += 1
                counts[stop] -= 1
        for attempt in lane.attempts:
            attempts += 1
            if attempt.end is not None:
                durations.append(attempt.end - attempt.start)
            if attempt.retry_delay is not None and attempt.end is not None:
                retries[min(buckets - 1, int(attempt.end / width))] += 1
                minutes[min(len(minutes) - 1, int(attempt.end // 60))] += 1
    per_state: dict[str, tuple[int, ...]] = {}
    for state, counts in diffs.items():
        running, series = 0, []
        for change in counts[:buckets]:
            running += change
            series.append(running)
        per_state[state] = tuple(series)
    durations.sort()
    latency: dict[str, float] = {}
    if durations:
        latency = {
            "p50": _percentile(durations, 0.50),
            "p90": _percentile(durations, 0.90),
            "p99": _percentile(durations, 0.99),
            "max": durations[-1],
        }
    return Summary(width, per_state, tuple(retries), tuple(minutes), latency, attempts)


def summary_svg(summary: Summary) -> str:
    """Stacked per-state areas over time and retry bars below them, in a viewBox of the
    picture's seconds (so the page zooms it with the lanes)."""
    n, width = summary.buckets, summary.bucket_seconds
    totals = [sum(summary.per_state[s][i] for s in STATES) for i in range(n)]
    peak = max(totals, default=0) or 1
    paths: list[str] = []
    base = [0.0] * n
    for state in STATES:
        series = summary.per_state[state]
        if not any(series):
            continue
        d = []
        for i, count in enumerate(series):
            if count:
                h = count / peak * HEIGHT
                y = HEIGHT - base[i] - h
                d.append(f"M{i * width:.3f} {y:.2f}h{width:.3f}v{h:.2f}h{-width:.3f}z")
                base[i] += h
        title = f"{state}: at most {max(series)} resources"
        paths.append(
            f'<path class="area s-{state}" d="{"".join(d)}"><title>{escape(title)}</title></path>'
        )
    most = max(summary.retries, default=0) or 1
    bars = []
    for i, count in enumerate(summary.retries):
        if count:
            h = count / most * RETRY_HEIGHT
            bars.append(
                f'<rect class="retry" x="{i * width:.3f}" y="{HEIGHT + 4 + RETRY_HEIGHT - h:.2f}" '
                f'width="{width:.3f}" height="{h:.2f}"><title>{count} retries from '
                f"+{i * width:.1f} s to +{(i + 1) * width:.1f} s</title></rect>"
            )
    total = HEIGHT + 4 + RETRY_HEIGHT
    span = n * width
    return (
        f'<svg id="summary-chart" viewBox="0 0 {span:.3f} {total}" preserveAspectRatio="none" '
        f'role="img" aria-label="resources per state over time, and retries">'
        + "".join(paths)
        + "".join(bars)
        + "</svg>"
    )


def summary_text(summary: Summary) -> str:
    """One line of figures: attempts, retries per minute at peak, latency percentiles."""
    parts = [f"{summary.attempts} effect attempts", f"{sum(summary.retries)} retries"]
    if len(summary.per_minute) > 1 and sum(summary.retries) > 0:
        parts.append(f"at most {max(summary.per_minute)} retries in a minute")
    if summary.latency:
        parts.append(
            "latency " + ", ".join(f"{k} {_duration(v)}" for k, v in summary.latency.items())
        )
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"{seconds:,.2f} s"
