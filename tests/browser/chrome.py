"""Finding (or installing) Chromium and driving it: helpers behind the fixtures in ``conftest.py``.

Chromium and its driver come from Debian's packages (``chromium``, ``chromium-driver``). When they are
missing they are installed with apt-get (as root, or through passwordless sudo): CI starts on a fresh
machine where only the package registries are reachable, so no browser build can be downloaded from
anywhere else (Playwright's or Selenium Manager's downloads would fail there).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from aeflow.system import apt_install

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
APT_PACKAGES = ("chromium", "chromium-driver")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def find_chromium() -> tuple[str | None, str | None]:
    """Chromium and chromedriver executables: ``AEFLOW_CHROMIUM``/``AEFLOW_CHROMEDRIVER``, else on PATH."""
    override = os.environ.get("AEFLOW_CHROMIUM")
    browser = shutil.which(override) if override else next(filter(None, map(shutil.which, BROWSERS)), None)
    override = os.environ.get("AEFLOW_CHROMEDRIVER")
    driver = shutil.which(override or "chromedriver")
    return browser, driver


def apt_install_chromium() -> str:
    """Install Debian's Chromium and chromedriver; returns what went wrong ("" on success)."""
    return apt_install(APT_PACKAGES)


class Browser:
    """A headless Chromium session that remembers every URL a page asked for."""

    def __init__(self, driver: object, shots: Path) -> None:
        self.driver = driver
        self.shots = shots
        self.requested: list[str] = []

    def drain_requests(self) -> list[str]:
        """URLs of all requests the pages made since the last call (from DevTools' network events)."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.requested.append(message["params"]["request"]["url"])
        urls, self.requested = self.requested, []
        return urls

    def screenshot(self, name: str, full_page: bool = False) -> Path:
        """A PNG of the window (or of the whole document) under the screenshots folder.

        ``full_page`` suits static pages; single-page apps that scroll inside their own panels are
        better taken as the window shows them.
        """
        path = self.shots / f"{name}.png"
        if full_page:
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
            )
            path.write_bytes(base64.b64decode(shot["data"]))
        else:
            self.driver.save_screenshot(str(path))
        return path

    def wait(self, condition: object, what: str, timeout: float = 60) -> object:
        """Wait for ``condition(driver)`` to be truthy; on time-out save a screenshot and say what failed."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.25).until(condition)
        except TimeoutException:
            shot = self.screenshot("timeout-" + "".join(c if c.isalnum() else "-" for c in what)[:60])
            body = self.driver.execute_script("return document.body ? document.body.innerText : ''")
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what} at {self.driver.current_url} "
                f"(screenshot {shot}); page text starts: {body[:800]!r}"
            ) from None


def off_machine(urls: list[str]) -> list[str]:
    """The URLs that would leave this machine: anything but file:, data:, blob: (local) or loopback."""
    bad = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("file", "data", "about"):
            continue
        if parts.scheme == "blob":
            parts = urlsplit(url[len("blob:") :])
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname in LOCAL_HOSTS:
            continue
        bad.append(url[:200])
    return bad
