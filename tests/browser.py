"""A real browser for the web-UI tests: Debian's chromium driven by Playwright (no browser download).

``with chromium_page() as page:`` gives a Playwright page; without chromium or Playwright the
test is skipped with the command that installs them (on CI both are installed by ``lab.py test``).
"""
import contextlib
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "results" / "screenshots"
# Checked with Debian's chromium under Playwright: --no-sandbox lets it run as root in a container (CI);
# --disable-gpu for machines without one; the others stop its calls home (updates, sync, first-run
# pages, QUIC probes), which would hang or fail on a closed network.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic",
                  "--no-proxy-server"]  # every page a test opens is served from 127.0.0.1


def chromium_path():
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@contextlib.contextmanager
def chromium_page(extra_flags=(), viewport=(1280, 900)):
    """A fresh headless chromium page; closed (with its browser) on exit."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium on this machine: `sudo apt-get install chromium` (Debian/Ubuntu)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-test.txt")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True,
                                     args=CHROMIUM_FLAGS + list(extra_flags))
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            yield page
        finally:
            browser.close()


def save_screenshot(page, name: str) -> Path:
    """Keep a screenshot as a test artifact under results/screenshots/ (ignored by git)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
