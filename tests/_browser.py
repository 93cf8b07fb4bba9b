"""Headless Chromium for the browser tests (the built book, JupyterLab): Debian's packages, Selenium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BROWSER_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)


def chrome_options(what: str, profile_dir: Path) -> object:
    """Selenium options for headless Chromium with a fresh profile in ``profile_dir``.

    Without Chromium or its driver the test skips, naming the Debian packages, or fails under
    ``CI=true`` (where ``.ci/run`` installs them); ``what`` names the test in that message.
    """
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        message = (
            f"{', '.join(missing)} not found: install the Debian packages chromium and "
            f"chromium-driver (apt-get install chromium chromium-driver) to run {what}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (.ci/run installs them)")
        pytest.skip(message)
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    return options


def start_chrome(options: object) -> object:
    """A Selenium Chrome driver on the Debian chromedriver with ``options``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
