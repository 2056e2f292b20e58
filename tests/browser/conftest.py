"""A real headless Chromium driven by Selenium, for what a person sees in the MLflow UI and the report.

Chromium comes from Debian's packages, installed on first use when missing (see ``chrome.py``). If it
still cannot be had the tests fail under CI (``CI`` set) and skip elsewhere. Screenshots go to
``$AEFLOW_TEST_ARTIFACTS/browser`` (default ``test-artifacts/browser`` in the repo) for a person to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.chrome import APT_PACKAGES, Browser, apt_install_chromium, find_chromium

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Paths of a Chromium binary and the matching chromedriver, installing Debian's when missing."""
    browser, driver = find_chromium()
    problem = ""
    if not (browser and driver):
        problem = apt_install_chromium()
        browser, driver = find_chromium()
    if not (browser and driver):
        message = (
            "headless Chromium is needed for the browser tests but was not found "
            f"(chromium: {browser}, chromedriver: {driver}). Install it with "
            f"`apt-get install -y {' '.join(APT_PACKAGES)}` or point AEFLOW_CHROMIUM/AEFLOW_CHROMEDRIVER "
            f"at one. Automatic install: {problem or 'packages installed but binaries still missing'}"
        )
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this is an error, not a skip)")
        pytest.skip(message)
    return browser, driver


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where screenshots are kept for a person to look at after the run."""
    folder = Path(os.environ.get("AEFLOW_TEST_ARTIFACTS") or REPO / "test-artifacts") / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(chromium: tuple[str, str], screenshots: Path) -> Iterator[Browser]:
    """A fresh headless Chromium that cannot resolve any host but the loopback one."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, chromedriver = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespaces for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # a safety net, not the check: a page that tried to reach the internet fails to resolve the host,
        # and the request still shows up in the performance log that the tests assert on
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1, EXCLUDE localhost",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(
        options=options, service=Service(chromedriver, log_output=str(screenshots / "chromedriver.log"))
    )
    try:
        yield Browser(driver, screenshots)
    finally:
        driver.quit()
