"""The timeline page of each golden journal, rendered by `engine replay --format
timeline` in a subprocess and loaded in a real headless Chromium (Debian's chromium and
chromedriver, driven by Selenium): a lane per resource, failed attempts in the failure
colour, a click shows the record, zoom narrows the window. A screenshot of each page
is kept in the test's output directory (its path is printed)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from engine.bench.browser import browser_missing, chromium
from tests.fixtures.journals.make_golden import HERE, SCENARIOS

pytestmark = pytest.mark.e2e

FAILURE_RED = "rgb(207, 34, 46)"
RETRY_ORANGE = "rgb(251, 143, 68)"


def require_browser() -> None:
    """In CI a missing browser fails the test; elsewhere it skips it."""
    why = browser_missing()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the browser tests need Chromium: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    require_browser()
    with chromium() as driver:
        yield driver


def timeline_page(name: str, directory: Path, *extra: str) -> Path:
    """Import the golden export `name` and render its timeline page with the CLI."""
    db, page = directory / f"{name}.db", directory / f"{name}.html"
    engine = [sys.executable, "-m", "engine"]
    subprocess.run(
        [*engine, "journal", "import", str(HERE / f"{name}.jsonl"), "--to", str(db)],
        check=True, capture_output=True,
    )  # fmt: skip
    with page.open("wb") as out:
        subprocess.run(
            [*engine, "replay", str(db), "--format", "timeline", *extra], check=True, stdout=out
        )
    return page


def load(driver: WebDriver, page: Path) -> None:
    driver.get(page.as_uri())
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.documentElement.dataset.ready") == "1"
    )


def screenshot(driver: WebDriver, path: Path) -> None:
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")


def fill_of(driver: WebDriver, selector: str) -> str:
    return str(
        driver.execute_script(
            "return getComputedStyle(document.querySelector(arguments[0])).fill", selector
        )
    )


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_resource_of_a_golden_journal_has_its_lane(
    name: str, browser: WebDriver, tmp_path: Path
) -> None:
    load(browser, timeline_page(name, tmp_path))
    screenshot(browser, tmp_path / f"{name}.png")
    streams = {
        line.split('"stream": "')[1].split('"')[0]
        for line in (HERE / f"{name}.jsonl").read_text().splitlines()[1:]
    }
    lanes = browser.find_elements(By.CSS_SELECTOR, "#lanes .lane")
    assert {lane.get_attribute("data-id") for lane in lanes} == streams
    # every lane draws its states: at least the Pending span and the one it ended in
    for lane in lanes:
        assert len(lane.find_elements(By.CSS_SELECTOR, "rect.span")) >= 2
    # and the picture was drawn without script too: the same lanes are in the file
    source = (tmp_path / f"{name}.html").read_text()
    assert all(f'class="lane" data-id="{s}"' in source for s in streams)


@pytest.mark.parametrize(
    ("name", "outcome", "colour"),
    [
        pytest.param("permanent_failed", "permanent", FAILURE_RED, id="permanent-red"),
        pytest.param("retry_ready", "retryable", RETRY_ORANGE, id="retryable-orange"),
    ],
)
def test_a_failed_attempt_is_drawn_in_its_failure_colour(
    name: str, outcome: str, colour: str, browser: WebDriver, tmp_path: Path
) -> None:
    load(browser, timeline_page(name, tmp_path))
    selector = f"#lanes .bar.o-{outcome} rect"
    assert browser.find_elements(By.CSS_SELECTOR, selector)
    assert fill_of(browser, selector) == colour
    assert fill_of(browser, "#lanes .bar.o-succeeded rect") != colour


def test_clicking_a_failed_attempt_shows_its_record(browser: WebDriver, tmp_path: Path) -> None:
    load(
        browser, timeline_page("permanent_failed", tmp_path, "--jaeger-url", "http://jaeger:16686")
    )
    details = browser.find_element(By.ID, "details")
    assert not details.is_displayed()
    bar = browser.find_element(By.CSS_SELECTOR, "#lanes .bar.o-permanent")
    position = bar.get_attribute("data-pos")
    # a real pointer click on the bar (an instant attempt is a few pixels wide)
    ActionChains(browser).move_to_element(bar).click().perform()
    WebDriverWait(browser, 5).until(lambda _: details.is_displayed())
    screenshot(browser, tmp_path / "permanent_failed-details.png")
    meta = browser.find_element(By.CSS_SELECTOR, "#details .record-meta").text
    assert meta.startswith(f"EffectFailed · position {position} ")
    record = browser.find_element(By.CSS_SELECTOR, "#details .record-data").text
    assert '"retryable": false' in record
    assert "PermanentError" in record
    trace = browser.find_element(By.CSS_SELECTOR, "#details a.jaeger")
    assert trace.get_attribute("href").startswith("http://jaeger:16686/trace/")
    assert "selected" in (bar.get_attribute("class") or "")


def test_zooming_narrows_every_lane_to_the_window(browser: WebDriver, tmp_path: Path) -> None:
    load(browser, timeline_page("retry_ready", tmp_path))
    frm, to = browser.find_element(By.ID, "z-from"), browser.find_element(By.ID, "z-to")
    frm.clear()
    frm.send_keys("1")
    to.clear()
    to.send_keys("2\n")
    track = browser.find_element(By.CSS_SELECTOR, "#lanes .lane svg.track")
    WebDriverWait(browser, 5).until(
        lambda _: track.get_dom_attribute("viewBox") == "1.000 0 1.000 28"
    )
    ticks = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#ticks .tick")]
    assert ticks[0].startswith("00:00:01")
    browser.find_element(By.ID, "z-reset").click()
    assert (track.get_dom_attribute("viewBox") or "").startswith("0.000 0 ")


def golden_records(name: str) -> list[object]:
    """The records of golden journal `name` (one JSON line each, after the header)."""
    lines = (HERE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [line for line in lines[1:] if line.strip()]


def test_without_script_the_page_shows_its_lanes_and_records(tmp_path: Path) -> None:
    require_browser()
    page = timeline_page("retry_ready", tmp_path)
    with chromium(script=False) as driver:
        driver.get(page.as_uri())
        lanes = driver.find_elements(By.CSS_SELECTOR, "#lanes .lane")
        assert [lane.get_attribute("data-id") for lane in lanes] == [
            "example.com/Bucket/default/charlie#uid-charlie"
        ]
        assert lanes[0].find_elements(By.CSS_SELECTOR, ".bar.o-retryable")
        assert not driver.find_element(By.ID, "controls").is_displayed()  # needs script
        rows = driver.find_elements(By.CSS_SELECTOR, "#tables tr[id^=rec-]")
        assert len(rows) == len(golden_records("retry_ready"))  # a row for every record
        screenshot(driver, tmp_path / "retry_ready-no-script.png")
        # a shape links to its record's row
        link = lanes[0].find_element(By.CSS_SELECTOR, "a:has(.bar.o-retryable)")
        target = (link.get_dom_attribute("href") or "").removeprefix("#")
        assert driver.find_element(By.ID, target).tag_name == "tr"
