"""``report.html`` and ``comparison.html`` of a real demo sweep, opened in headless Chromium
(Debian's ``chromium``, driven by Playwright; ``.ci/run`` installs it): no console error, no
asset that fails to load, the filters work, and a screenshot of each.

``REEDIT_UPDATE_DOCS=1`` also writes the screenshots the README shows (``docs/report.png``,
``docs/comparison.png``): look at them before committing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.walkthrough  # on the demo sweep (conftest.demo_sweep)

CHROMIUM = os.environ.get("REEDIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), (
        f"no Chromium at {CHROMIUM}: install Debian's (apt-get install chromium; .ci/run does) "
        "or point REEDIT_CHROMIUM at one"
    )
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def open_page(browser, path: Path, width: int = 1280, height: int = 900):
    """The page at ``path`` and what went wrong while loading it (console errors and warnings,
    page errors, failed requests, images that did not decode)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"{r.url}: {r.failure}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    broken = page.evaluate(
        "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.alt || i.src.slice(0, 60))"
    )
    problems += [f"image not shown: {b}" for b in broken]
    return page, problems


def shoot(page, name: str, tmp_path: Path) -> Path:
    """A screenshot of the top of the page."""
    out = tmp_path / name
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(out))
    assert out.stat().st_size > 10_000
    if os.environ.get("REEDIT_UPDATE_DOCS") == "1":
        shutil.copy(out, ROOT / "docs" / name)
    return out


def test_a_runs_report_renders_cleanly_and_its_gallery_filters(browser, demo_sweep, tmp_path):
    page, problems = open_page(browser, demo_sweep / "0_identity" / "report.html")
    assert problems == []
    assert page.locator("h1").text_content().startswith("reedit report — identity")
    assert page.locator("table").first.locator("tr").count() == 3  # header, primary, refined
    assert page.locator(".plots img").count() == 4
    cards = page.locator("article.card")
    assert cards.count() == 5 and page.locator("#shown").text_content() == "5"
    page.select_option("select[data-filter=category]", "physical")
    assert page.locator("#shown").text_content() == "1"
    assert page.locator("article.card:not(.hidden)").count() == 1
    page.select_option("select[data-filter=category]", "")
    page.fill("input[data-filter=text]", "00004")
    assert page.locator("#shown").text_content() == "1"
    page.fill("input[data-filter=text]", "")
    # every full-size link points at a file beside the report
    hrefs = page.eval_on_selector_all("article.card a", "els => els.map(e => e.href)")
    assert hrefs and all(Path(h.removeprefix("file://")).is_file() for h in hrefs)
    shoot(page, "report.png", tmp_path)


def test_the_comparison_renders_cleanly_and_its_browser_filters(browser, demo_sweep, tmp_path):
    page, problems = open_page(browser, demo_sweep / "comparison.html")
    assert problems == []
    assert page.locator("h1").text_content() == "reedit comparison — 3 runs"
    assert page.locator(".plots img").count() == 5
    cards = page.locator("article.card")
    total = cards.count()
    assert total >= 1 and page.locator("#shown").text_content() == str(total)
    page.select_option("select[data-filter=split]", "primary")
    shown = int(page.locator("#shown").text_content())
    assert shown == page.locator("article.card:not(.hidden)").count() <= total
    links = page.eval_on_selector_all("table:not(.runs) a", "els => els.map(e => e.href)")
    assert len(links) == 6  # each run, in the table of each image, links to its report
    assert all(Path(h.removeprefix("file://")).is_file() for h in links)
    full = page.eval_on_selector_all("article.card a", "els => els.map(e => e.href)")
    assert full and all(Path(h.removeprefix("file://")).is_file() for h in full)
    shoot(page, "comparison.png", tmp_path)
