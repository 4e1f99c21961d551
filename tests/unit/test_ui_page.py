"""The timeline page as rendered on the server (pure): the picture and the record tables
are in the file (readable without script), every journal value is escaped, the data
for the script cannot close its element, and the same journal gives the same bytes."""

from __future__ import annotations

import json
import re

from engine.fsm import events as ev
from engine.ui.page import render_page
from engine.ui.page_data import script_json
from tests.unit.test_ui_picture import Streams, golden, picture_of

HOSTILE = '<img src=x onerror="alert(1)">'


def page_of(name: str, **options: object) -> str:
    records = golden(name)
    return render_page(
        picture_of(records), records, title=f"Timeline of {name}", jaeger_url=None, **options
    )  # type: ignore[arg-type]


def script_data(page: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="timeline-data">(.*?)</script>', page)
    assert found is not None
    data: dict[str, object] = json.loads(found.group(1))
    return data


def test_the_page_draws_every_lane_and_attempt_without_script() -> None:
    page = page_of("retry_ready")
    board = page.split('<section id="board">')[1].split("</section>")[0]
    records = golden("retry_ready")
    assert board.count('<div class="lane" ') == 1
    failures = [r for r in records if r.type == ev.EFFECT_FAILED]
    assert board.count('class="bar o-retryable"') == len(failures)
    assert board.count('class="gap"') == len([r for r in records if r.type == ev.RETRY_SCHEDULED])
    # each failed attempt links to its record's row, and every record has its row
    for failure in failures:
        assert f'<a href="#rec-{failure.position}"><g class="bar o-retryable"' in board
    assert len(re.findall(r'<tr id="rec-\d+"', page)) == len(records)
    assert '<svg id="summary-chart"' in page


def test_the_same_journal_renders_the_same_bytes() -> None:
    assert page_of("delete") == page_of("delete")


def test_journal_text_is_escaped_in_the_picture_the_tables_and_the_data() -> None:
    streams = Streams()
    key = "uid-x:1:provision"
    streams.add(HOSTILE, ev.effect_started(key=key, name="provision", attempt=1), seconds=0)
    streams.add(
        HOSTILE,
        ev.effect_failed(
            key=key, name="provision", attempt=1, error_class="PermanentError",
            retryable=False, message="</script><script>alert(2)</script><!--",
        ),
        seconds=1,
    )  # fmt: skip
    page = render_page(picture_of(streams.records), streams.records, title=HOSTILE, jaeger_url=None)
    assert HOSTILE not in page
    assert "<script>alert" not in page
    assert page.count("</script>") == 2  # only the page's own two scripts end
    assert "<!--" not in page
    data = script_data(page)
    lanes = data["lanes"]
    assert isinstance(lanes, list)
    assert lanes[0]["id"].startswith("example.dev/Site/default/<img")  # intact as data


def test_one_resource_gets_a_page_of_its_own_lanes() -> None:
    streams = Streams()
    for name in ("blog", "docs"):
        streams.add(
            name, ev.status_written(phase="Pending", observed_generation=1, reason=None), seconds=0
        )
    picture = picture_of(streams.records)
    page = render_page(
        picture, streams.records, title="t", jaeger_url=None, resource="default/docs"
    )
    lanes = script_data(page)["lanes"]
    assert isinstance(lanes, list)
    assert [lane["id"] for lane in lanes] == ["example.dev/Site/default/docs#uid-docs"]
    assert "default/blog" not in page


def test_a_journal_too_large_for_tables_says_how_to_see_one_resource() -> None:
    records = golden("retry_ready")
    page = render_page(picture_of(records), None, title="t", jaeger_url=None)
    assert '<tr id="rec-' not in page
    assert "--resource NS/NAME --format timeline" in page
    assert script_data(page)["details"] == {}


def test_trace_ids_link_to_jaeger_when_a_url_is_given() -> None:
    records = golden("create_ready")
    page = render_page(picture_of(records), records, title="t", jaeger_url="http://j:16686/")
    trace = next(r.trace_id for r in records if r.trace_id)
    assert f'href="http://j:16686/trace/{trace}"' in page
    assert script_data(page)["jaeger_url"] == "http://j:16686/"


def test_script_data_never_holds_a_closing_tag() -> None:
    text = script_json({"a": "</script>", "b": "<!-- x", "c": "</SCRIPT>"})
    assert "</" not in text
    assert "<!--" not in text
    assert json.loads(text) == {"a": "</script>", "b": "<!-- x", "c": "</SCRIPT>"}
