"""Headless Chromium driven by Selenium, from the machine's own packages: Debian's
`chromium` and `chromium-driver` (/usr/bin/chromium, /usr/bin/chromedriver), given to
Selenium explicitly so that nothing is downloaded (Selenium Manager never runs)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install chromium chromium-driver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class BrowserMissing(RuntimeError):
    """Chromium or its driver is not installed here."""


def browser_missing() -> str | None:
    """Why the browser cannot run here (naming the install command), or None."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        return f"{' and '.join(missing)} missing: {INSTALL_HINT}"
    return None


@contextmanager
def chromium(
    *, width: int = 1400, height: int = 900, script: bool = True
) -> Iterator[webdriver.Chrome]:
    """A headless Chromium session with a fresh profile, closed (and its profile
    removed) on exit; `script=False` disables JavaScript in pages.
    Errors: `BrowserMissing` naming the packages to install."""
    why = browser_missing()
    if why is not None:
        raise BrowserMissing(why)
    profile = tempfile.mkdtemp(prefix="engine-chromium-")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    if not script:
        options.add_argument("--blink-settings=scriptEnabled=false")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
