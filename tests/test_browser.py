"""The built results page in a real browser: every figure draws, and nothing leaves the machine.

Uses Debian's chromium (/usr/bin/chromium) through Playwright. Without chromium the test is
skipped locally but FAILS when $CI is set (CI installs it: apt-get install -y chromium).
The book is built from the SYNTHETIC results of conftest.write_synthetic_results.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from xlt_helpers import book

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SCREENSHOT_COPY = Path("/tmp/book-results.png")   # a copy for people to look at
LOCAL_SCHEMES = {"file", "data", "blob", "about"}
ALL_DRAWN = """() => {
  const divs = [...document.querySelectorAll('.plotly-graph-div')];
  return !!window.Plotly && divs.length > 0 && divs.every(d => d.querySelector('svg.main-svg'));
}"""


def _need_browser():
    why = None
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is absent (install: apt-get update && apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            why = "the playwright package is absent (pip install -e '.[dev]')"
    if why and os.environ.get("CI"):
        pytest.fail(f"CI is set but {why}; CI must install it.")
    if why:
        pytest.skip(why)


def _is_local(url: str) -> bool:
    u = urlparse(url)
    return u.scheme in LOCAL_SCHEMES or (u.scheme in {"http", "https", "ws"} and u.hostname in {"localhost", "127.0.0.1"})


@pytest.mark.slow  # a full book build (~35 s) plus a browser start
def test_results_page_draws_every_figure_offline(tmp_path, synthetic_results):
    _need_browser()
    from playwright.sync_api import sync_playwright

    html = book.build_book(results_dir=synthetic_results(tmp_path / "results"), out_dir=tmp_path / "out")
    page_path = html / "book" / "results.html"
    requests, errors = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            # anything non-local is recorded above and then refused, so a leak cannot hang the test
            page.route("**/*", lambda route: route.continue_() if _is_local(route.request.url) else route.abort())
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_function(ALL_DRAWN, timeout=30_000)
            n_divs = page.locator(".plotly-graph-div").count()
            n_drawn = page.locator(".plotly-graph-div svg.main-svg").count()
            shot = tmp_path / "results.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    shutil.copy(shot, SCREENSHOT_COPY)
    remote = [u for u in requests if not _is_local(u)]
    assert not remote, f"requests left the machine: {remote}"
    assert any(u.endswith("plotly.min.js") or "plotly.min.js?" in u for u in requests)
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert n_divs >= 8 and n_drawn >= n_divs, (n_divs, n_drawn)
    assert shot.stat().st_size > 50_000
