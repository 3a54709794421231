"""End to end in a real browser: ``posestyle app`` serves the small index on a free localhost port and
Debian's Chromium (driven by Selenium through /usr/bin/chromedriver) searches with an indexed
sequence, then picks a point on the Explore map. The search page is saved as a screenshot at
``tests/app/artifacts/search.png`` (git-ignored). Without Chromium the tests skip - except in CI
(``CI=true``), where they fail."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.services.analysis import AppService
from benchmarks.app_process import (
    AppDidNotStart,
    browser_missing,
    cards_with_images,
    headless_chromium,
    search_by_id,
    serve_app,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SCREENSHOT = ARTIFACTS / "search.png"
SERVER_START_S = 180
PAGE_WAIT_S = 180
WINDOW = "1400,2000"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _require_browser() -> None:
    missing = browser_missing()
    if missing:
        reason = f"browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if _in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@contextmanager
def served(root: Path, workdir: Path) -> Iterator[str]:
    """``posestyle app --root root`` on a free localhost port until healthy (log: ``workdir/app.log``)."""
    try:
        with serve_app(root, workdir / "app.log", start_timeout_s=SERVER_START_S, cwd=workdir,
                       env={"HOME": str(workdir)}) as (url, _):
            yield url
    except AppDidNotStart as err:
        pytest.fail(str(err))


@pytest.fixture
def served_app(index_copy: Path, tmp_path: Path) -> Iterator[str]:
    """``posestyle app`` over a copy of the small index on a free port; yields its URL, stops it after."""
    _require_browser()
    with AppService(index_copy) as service:     # the map layout, so the server needs no UMAP run
        service.embedding_map(service.open_live())
    with served(index_copy, tmp_path) as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Headless Chromium with a fresh profile and nothing that reaches the network on its own."""
    _require_browser()
    monkeypatch.setenv("SE_AVOID_STATS", "true")
    with headless_chromium(tmp_path / "chromium-profile", WINDOW) as driver:
        yield driver


def _wait(driver, condition, what: str):
    """``condition`` polled until true; an element Streamlit re-drew between finding and reading it
    (stale) only means "not yet"."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, PAGE_WAIT_S, ignored_exceptions=(StaleElementReferenceException,)).until(
            condition)
    except TimeoutException:
        driver.save_screenshot(str(ARTIFACTS / "failure.png"))
        pytest.fail(f"timed out waiting for {what}; screenshot at {ARTIFACTS / 'failure.png'}")


def _expected_hits(root: Path, query: str, k: int) -> list[str]:
    with AppService(root) as service:
        return [h.sequence_id for h in service.search_by_id(service.open_live(), query, k, None)]


def _card_titles(cards) -> list[str]:
    return [card.text.splitlines()[0] for card in cards]


def test_search_in_a_real_browser(served_app: str, browser, small_index, index_copy: Path) -> None:
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    query = small_index.sequence_ids[10]
    browser.get(served_app)
    _wait(browser, lambda d: _h1(d) == "Search by style", "the Search page")
    search_by_id(browser, query, PAGE_WAIT_S)
    k = 8
    expected = _expected_hits(index_copy, query, k)
    assert len(expected) == k
    cards = _wait(browser, lambda d: (c := cards_with_images(d)) and len(c) == k and c, f"{k} result cards")
    assert _card_titles(cards) == [f"#{rank} {s}" for rank, s in enumerate(expected, start=1)]
    assert f"closest in style to {query}" in browser.find_element(By.CSS_SELECTOR, "h3").text
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= 3,
          "the comparison charts")
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')
    time.sleep(1)   # let the charts finish their entry transition
    assert browser.save_screenshot(str(SCREENSHOT))
    print(f"screenshot: {SCREENSHOT}")


def test_clicking_a_point_on_the_map_searches_with_it(served_app: str, browser, index_copy: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(f"{served_app}/explore")
    _wait(browser, lambda d: d.execute_script(
        "const g = document.querySelector('.js-plotly-plot'); return !!(g && g._fullData && g._fullData.length)"),
        "the style map")
    point = browser.execute_script("""
        const g = document.querySelector('.js-plotly-plot'), t = g._fullData[0], L = g._fullLayout;
        return {x: L.xaxis.l2p(t.x[0]) + L._size.l, y: L.yaxis.l2p(t.y[0]) + L._size.t, id: t.customdata[0][0]};""")
    plot = browser.find_element(By.CSS_SELECTOR, ".js-plotly-plot")
    drag = browser.find_element(By.CSS_SELECTOR, ".js-plotly-plot .nsewdrag")
    dx = plot.rect["x"] + point["x"] - (drag.rect["x"] + drag.rect["width"] / 2)
    dy = plot.rect["y"] + point["y"] - (drag.rect["y"] + drag.rect["height"] / 2)
    ActionChains(browser).move_to_element_with_offset(drag, int(dx), int(dy)).click().perform()

    _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "h1").text == "Search by style", "the Search page")
    _wait(browser, lambda d: f"closest in style to {point['id']}" in " ".join(
        h.text for h in d.find_elements(By.CSS_SELECTOR, "h3")), f"results for {point['id']}")
    expected = _expected_hits(index_copy, point["id"], 8)
    cards = _wait(browser, lambda d: (c := cards_with_images(d)) and len(c) == len(expected) and c, "result cards")
    assert _card_titles(cards) == [f"#{rank} {s}" for rank, s in enumerate(expected, start=1)]


PAGE_TITLES = {"search": "Search by style", "explore": "Explore the style space", "evaluate": "Evaluate the live index"}


def _h1(driver) -> str:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, "h1")
    return found[0].text if found else ""


def test_pages_have_urls_cards_line_up_compare_scrolls_and_each_page_is_captured(
        served_app: str, browser, small_index, index_copy: Path) -> None:
    """``/search`` serves Search (``/`` forwards to it); after a search every card of a row is as tall as
    the others, "Compare with query" brings the comparison into view, and each page is captured."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    for path in ("explore", "evaluate"):
        browser.get(f"{served_app}/{path}")
        _wait(browser, lambda d, p=path: _h1(d) == PAGE_TITLES[p], f"the {path} page at /{path}")
    browser.get(served_app)
    _wait(browser, lambda d: d.current_url.rstrip("/").endswith("/search") and _h1(d) == PAGE_TITLES["search"],
          "/ forwarding to /search")
    browser.get(f"{served_app}/search")
    _wait(browser, EC.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-query-id input")), "the query picker")
    assert _h1(browser) == PAGE_TITLES["search"]
    assert not browser.find_elements(By.XPATH, "//*[contains(text(), 'Page not found')]")

    query = small_index.sequence_ids[3]
    cards = search_by_id(browser, query, PAGE_WAIT_S, hits=8)
    expected_hit_8 = _expected_hits(index_copy, query, 8)[-1]
    rows: dict[int, list[float]] = {}
    for card in cards:
        rows.setdefault(round(card.rect["y"]), []).append(card.rect["height"])
    assert len(rows) == 2 and all(max(h) - min(h) <= 1.0 for h in rows.values()), rows

    # "Compare with query" on the last card: the comparison is drawn for that hit and scrolled into view
    browser.execute_script("window.scrollTo(0, 0)")
    button = browser.find_element(By.CSS_SELECTOR, ".st-key-compare-8 button")
    browser.execute_script("arguments[0].click()", button)
    in_view = ("const el = document.querySelector('.st-key-comparison'); if (!el) return false;"
               "const r = el.getBoundingClientRect(); return r.top >= -1 && r.top < window.innerHeight / 2;")
    _wait(browser, lambda d: d.execute_script(in_view), "the comparison scrolled into view")
    chosen = browser.execute_script("return document.querySelector('.st-key-compare-select').innerText "
                                    "+ ' ' + (document.querySelector('.st-key-compare-select input') || {}).value")
    assert expected_hit_8 in chosen, chosen

    browser.set_window_size(1400, 2000)
    browser.execute_script("window.scrollTo(0, 0)")
    time.sleep(1)
    shots = {"search": ARTIFACTS / "page-search.png"}
    assert browser.save_screenshot(str(shots["search"]))
    for path, title in (("explore", PAGE_TITLES["explore"]), ("evaluate", PAGE_TITLES["evaluate"]),
                        ("index", None)):
        link = browser.find_element(By.CSS_SELECTOR, f'[data-testid="stSidebarNav"] a[href$="/{path}"]')
        link.click()
        _wait(browser, lambda d, p=path: d.current_url.rstrip("/").endswith(f"/{p}"), f"the {path} page")
        if title:
            _wait(browser, lambda d, t=title: _h1(d) == t, f"the {path} page's title")
        _wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stSpinner"]'), "the page")
        time.sleep(2)
        assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        shots[path] = ARTIFACTS / f"page-{path}.png"
        assert browser.save_screenshot(str(shots[path]))
    print("screenshots: " + ", ".join(str(p) for p in shots.values()))
