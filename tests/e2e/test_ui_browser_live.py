"""The live timeline in a real browser: `engine run --local --plain` and `engine ui
--journal` as subprocesses, Sites created with the real kubectl, and headless Chromium
watching the page update over server-sent events without a reload: a new Site's lane
appears and turns Ready, a dependsOn cycle is drawn as its cycle, the filters hide the
other lanes, and a secret field's value reaches neither the page nor the event stream."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from engine.bench.browser import chromium
from tests.e2e.kubectl import Kubectl, needs_kubectl
from tests.e2e.test_ui_browser import load, require_browser, screenshot

pytestmark = [pytest.mark.e2e, needs_kubectl]

UI_URL = re.compile(r"at (http://127\.0\.0\.1:\d+/)")
SITE = """
apiVersion: example.dev/v1
kind: Site
metadata: {{name: {name}, namespace: default}}
spec: {{domain: {name}.example.com, password: {password}, dependsOn: [{depends}]}}
"""
CANARY = f"uicanary{uuid.uuid4().hex[:16]}"


def wait_for(what: str, check: Callable[[], object], log: Path, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting: {what}\n{log.read_text()}"
        time.sleep(0.1)


@dataclass(frozen=True)
class Live:
    state_dir: Path
    kubectl: Kubectl
    url: str
    log: Path

    def create_site(self, name: str, *, depends: str = "", password: str = "pw") -> None:
        manifest = SITE.format(name=name, password=password, depends=depends)
        self.kubectl.ok("apply", "-f", "-", stdin=manifest)


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM, and insist on a clean exit."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    require_browser()
    scratch = tmp_path_factory.mktemp("ui-live")
    state, log, ui_log = scratch / "state", scratch / "engine.log", scratch / "ui.log"
    engine = [sys.executable, "-m", "engine"]
    env = {**os.environ, "ENGINE_HEALTH_PORT": "0"}
    with log.open("wb") as out:
        run = subprocess.Popen(
            [*engine, "run", "--local", "--plain", "--state-dir", str(state)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    ui: subprocess.Popen[bytes] | None = None
    try:
        kubectl = Kubectl(state / "kubeconfig", scratch / "kubectl-cache")
        wait_for("the samples Ready", lambda: log.read_text().count(" Ready ") >= 3, log)
        with ui_log.open("wb") as out:
            ui = subprocess.Popen(
                [*engine, "ui", "--journal", str(state / "journal.db"), "--port", "0"],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for("the timeline URL", lambda: UI_URL.search(ui_log.read_text()), ui_log)
        found = UI_URL.search(ui_log.read_text())
        assert found is not None
        yield Live(state, kubectl, found.group(1), log)
    finally:
        if ui is not None:
            stop(ui, ui_log)
            assert "Traceback" not in ui_log.read_text()
        stop(run, log)
    assert "Traceback" not in log.read_text()


@pytest.fixture(scope="module")
def browser(live: Live) -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def open_live(browser: WebDriver, live: Live) -> None:
    browser.get(live.url)
    WebDriverWait(browser, 10).until(
        lambda d: d.execute_script("return document.documentElement.dataset.ready") == "1"
    )
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.ID, "live-status").text == "● live"
    )


# Live updates re-create the drawn lanes, so the DOM is read in one script call each
# (an element found in one call may be gone by the next).
def lane_state(browser: WebDriver, label: str) -> str | None:
    state = browser.execute_script(
        "var l = document.querySelector('#lanes .lane[data-label=\"' + arguments[0] + '\"]');"
        "return l ? l.dataset.state : null;",
        label,
    )
    return None if state is None else str(state)


def count(browser: WebDriver, selector: str) -> int:
    return int(
        browser.execute_script("return document.querySelectorAll(arguments[0]).length", selector)
    )


def attributes(browser: WebDriver, selector: str, *names: str) -> set[tuple[str, ...]]:
    found = browser.execute_script(
        "var names = arguments[1]; return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(function (e) { return names.map(function (n) { return e.getAttribute(n); }); });",
        selector,
        list(names),
    )
    return {tuple(str(v) for v in row) for row in found}


def test_a_site_created_with_kubectl_gets_a_lane_that_turns_ready_without_a_reload(
    live: Live, browser: WebDriver, tmp_path: Path
) -> None:
    open_live(browser, live)
    assert lane_state(browser, "default/fresh") is None
    browser.execute_script("window.sameDocument = 'not reloaded'")
    live.create_site("fresh", depends="blog")
    WebDriverWait(browser, 40).until(lambda b: lane_state(b, "default/fresh") is not None)
    WebDriverWait(browser, 40).until(lambda b: lane_state(b, "default/fresh") == "Ready")
    assert browser.execute_script("return window.sameDocument") == "not reloaded"
    fresh = '#lanes .lane[data-label="default/fresh"]'
    assert count(browser, fresh + " rect.span.s-Ready") == 1
    assert count(browser, fresh + " .bar.o-succeeded") >= 1
    screenshot(browser, tmp_path / "live.png")


def test_a_depends_on_cycle_is_drawn_as_its_cycle(
    live: Live, browser: WebDriver, tmp_path: Path
) -> None:
    open_live(browser, live)
    live.create_site("cycle-a", depends="cycle-b")
    live.create_site("cycle-b", depends="cycle-a")

    def edges(b: WebDriver) -> set[tuple[str, ...]]:
        return attributes(b, "#overlay line.deadlock-edge", "data-from", "data-to")

    cycle = {("default/cycle-a", "default/cycle-b"), ("default/cycle-b", "default/cycle-a")}
    WebDriverWait(browser, 40).until(lambda b: edges(b) == cycle)
    # the cycle is journaled in each member's stream: each lane gets its marker
    marked = '#lanes .lane[data-label^="default/cycle-"] .mark.m-deadlock'
    WebDriverWait(browser, 10).until(lambda b: count(b, marked) == 2)
    screenshot(browser, tmp_path / "deadlock-live.png")
    # and offline, from the journal file, the same cycle
    page = tmp_path / "deadlock.html"
    with page.open("wb") as out:
        subprocess.run(
            [sys.executable, "-m", "engine", "replay", str(live.state_dir / "journal.db"),
             "--format", "timeline"],
            check=True, stdout=out,
        )  # fmt: skip
    load(browser, page)
    assert edges(browser) == cycle
    screenshot(browser, tmp_path / "deadlock.png")


def test_the_filters_hide_the_other_resources(live: Live, browser: WebDriver) -> None:
    open_live(browser, live)

    def labels() -> set[str]:
        return {label for (label,) in attributes(browser, "#lanes .lane", "data-label")}

    assert {"default/blog", "default/docs", "default/shop"} <= labels()
    browser.find_element(By.ID, "f-name").send_keys("sho")
    WebDriverWait(browser, 5).until(lambda _: labels() == {"default/shop"})
    browser.find_element(By.ID, "f-name").send_keys(Keys.BACKSPACE * 3)
    WebDriverWait(browser, 5).until(lambda _: "default/blog" in labels())
    Select(browser.find_element(By.ID, "f-state")).select_by_value("Ready")
    Select(browser.find_element(By.ID, "f-outcome")).select_by_value("waiting")
    WebDriverWait(browser, 5).until(lambda _: "default/blog" not in labels())  # never waited
    shown = labels()
    assert "default/shop" in shown  # it waited for its Deployment, then went Ready
    assert "default/cycle-a" not in shown  # it waits, but was never Ready
    counted = browser.find_element(By.ID, "shown").text
    assert counted.startswith(f"{len(shown)} of ")


def test_no_secret_field_value_reaches_the_page_or_the_event_stream(
    live: Live, browser: WebDriver
) -> None:
    live.create_site("secretive", password=CANARY)
    open_live(browser, live)
    WebDriverWait(browser, 40).until(lambda b: lane_state(b, "default/secretive") == "Ready")
    with urllib.request.urlopen(live.url, timeout=10) as response:
        page = response.read().decode()
    assert "default/secretive" in page or "secretive" in page
    assert CANARY not in page
    assert "change-me" not in page  # the shop sample's password
    assert CANARY not in browser.page_source
    with urllib.request.urlopen(live.url + "events?from=0", timeout=10) as stream:
        lines = []
        while not any(line.startswith(b"data: ") for line in lines):
            lines.append(stream.readline())
    text = b"".join(lines).decode()
    assert "secretive" in text
    assert CANARY not in text
    assert "change-me" not in text
