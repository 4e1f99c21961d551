"""`engine bench ui`: the timeline page of a large journal (10,000 resources, 200,000
records by default) opened in headless Chromium: how long until it is interactive, and
how long a filter, a zoom and a scroll take there. Figures are printed, never asserted."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.bench.browser import chromium
from engine.bench.ui_journal import bench_records
from engine.journal.sqlite import SqliteJournal
from engine.ui.loader import load_picture
from engine.ui.page import render_page

READY = "return document.documentElement.dataset.ready === '1' ? window.timelineReadyAt : null"
LANES = "return document.querySelectorAll('#lanes .lane').length"
NAVIGATION = "return performance.getEntriesByType('navigation')[0].loadEventEnd"
FILTER = """
var t = performance.now(), e = document.getElementById('f-name');
e.value = arguments[0]; e.dispatchEvent(new Event('input'));
return [performance.now() - t, document.querySelectorAll('#lanes .lane').length];
"""
ZOOM = """
var t = performance.now(); document.getElementById('z-in').click();
return performance.now() - t;
"""
SCROLL = """
var t = performance.now(), box = document.getElementById('lanes');
window.scrollTo(0, box.offsetTop + box.offsetHeight / 2);
window.dispatchEvent(new Event('scroll'));
return new Promise(function (done) { requestAnimationFrame(function () {
  done([performance.now() - t, document.querySelectorAll('#lanes .lane').length]); }); });
"""


@dataclass(frozen=True)
class UiFigures:
    """What `engine bench ui` measured (times in seconds unless named _ms)."""

    resources: int
    records: int
    generate_seconds: float
    read_and_fold_seconds: float
    render_seconds: float
    page_bytes: int
    loads: int
    interactive_ms_median: float
    interactive_ms_max: float
    load_event_ms_median: float
    lanes_in_dom: int
    filter_ms: float
    filtered_lanes: int
    zoom_ms: float
    scroll_ms: float
    lanes_in_dom_after_scroll: int

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        return "\n".join(
            [
                f"journal                  {self.resources:,} resources, {self.records:,} records",
                f"generated                {self.generate_seconds:.1f} s",
                f"read + fold              {self.read_and_fold_seconds:.1f} s",
                f"page rendered            {self.render_seconds:.2f} s, "
                f"{self.page_bytes / 1e6:.1f} MB",
                f"interactive in Chromium  median {self.interactive_ms_median:,.0f} ms, "
                f"max {self.interactive_ms_max:,.0f} ms over {self.loads} loads "
                f"(load event {self.load_event_ms_median:,.0f} ms)",
                f"lanes in the DOM         {self.lanes_in_dom} (virtualized), "
                f"{self.lanes_in_dom_after_scroll} after a scroll to the middle",
                f"name filter              {self.filter_ms:.1f} ms "
                f"({self.filtered_lanes} lanes drawn)",
                f"zoom in                  {self.zoom_ms:.1f} ms",
                f"scroll to the middle     {self.scroll_ms:.1f} ms (to the next frame)",
            ]
        )


async def _write_journal(path: Path, resources: int) -> int:
    journal = await SqliteJournal.open(path, synchronous="NORMAL")
    try:
        return await journal.import_records(bench_records(resources))
    finally:
        await journal.close()


def run_bench(*, resources: int, loads: int) -> UiFigures:
    """Generate the journal, render its page, open it `loads` times in Chromium.

    Errors: `BrowserMissing` when Chromium or chromedriver is not installed.
    """
    with tempfile.TemporaryDirectory(prefix="engine-bench-ui-") as scratch:
        directory = Path(scratch)
        started = time.perf_counter()
        records = asyncio.run(_write_journal(directory / "journal.db", resources))
        generated = time.perf_counter() - started
        started = time.perf_counter()
        picture, kept = asyncio.run(load_picture(directory / "journal.db"))
        folded = time.perf_counter() - started
        started = time.perf_counter()
        page = render_page(picture, kept, title="engine bench ui", jaeger_url=None)
        rendered = time.perf_counter() - started
        page_path = directory / "timeline.html"
        page_path.write_text(page, encoding="utf-8")
        interactive, load_events = [], []
        with chromium() as driver:
            for _ in range(loads):
                driver.get("about:blank")
                driver.get(page_path.as_uri())
                ready = None
                deadline = time.monotonic() + 60
                while ready is None and time.monotonic() < deadline:
                    ready = driver.execute_script(READY)
                    if ready is None:
                        time.sleep(0.02)
                if ready is None:
                    raise RuntimeError("the page never became interactive (60 s)")
                interactive.append(float(ready))
                load_events.append(float(driver.execute_script(NAVIGATION)))
            in_dom = int(
                driver.execute_script("return document.querySelectorAll('#lanes .lane').length")
            )
            filter_ms, filtered = driver.execute_script(FILTER, "site-0004")
            driver.execute_script(FILTER, "")
            scroll_ms, after_scroll = driver.execute_script(SCROLL)
            zoom_ms = driver.execute_script(ZOOM)
        return UiFigures(
            resources=resources,
            records=records,
            generate_seconds=round(generated, 2),
            read_and_fold_seconds=round(folded, 2),
            render_seconds=round(rendered, 2),
            page_bytes=len(page.encode()),
            loads=loads,
            interactive_ms_median=round(statistics.median(interactive), 1),
            interactive_ms_max=round(max(interactive), 1),
            load_event_ms_median=round(statistics.median(load_events), 1),
            lanes_in_dom=in_dom,
            filter_ms=round(float(filter_ms), 1),
            filtered_lanes=int(filtered),
            zoom_ms=round(float(zoom_ms), 1),
            scroll_ms=round(float(scroll_ms), 1),
            lanes_in_dom_after_scroll=int(after_scroll),
        )
