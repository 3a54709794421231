"""A video query in a real browser: ``posestyle app`` serves a small 2D index that holds a clip, and
Debian's Chromium uploads that clip on the Search page. The page is saved as a screenshot at
``tests/app/artifacts/video_search.png`` (git-ignored). Skips without Chromium or the video extra,
except in CI, where both are installed and a missing one fails."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.app_process import cards_with_images
from tests.app.test_browser import (  # noqa: F401 (browser: a fixture)
    ARTIFACTS,
    _require_browser,
    _wait,
    browser,
    served,
)
from tests.app.test_video_search import CLIP_NAME, VideoIndex, build_video_index
from tests.support.video_requirements import require_video

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = ARTIFACTS / "video_search.png"


@pytest.fixture
def served_video_app(tmp_path: Path, make_checkpoint) -> Iterator[tuple[str, VideoIndex]]:
    """``posestyle app`` over a fresh small 2D index holding a clip; yields its URL and the index."""
    _require_browser()
    require_video()
    (tmp_path / "index").mkdir()
    index = build_video_index(tmp_path / "index", make_checkpoint)
    with served(index.root, tmp_path) as url:
        yield url, index


def test_video_query_in_a_real_browser(served_video_app, browser) -> None:  # noqa: F811 (fixture)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    url, index = served_video_app
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    browser.get(url)
    upload_choice = _wait(browser, EC.element_to_be_clickable(
        (By.XPATH, "//label[.//p[text()='Upload a pose file']]")), "the upload choice")
    upload_choice.click()
    field = _wait(browser, EC.presence_of_element_located(
        (By.CSS_SELECTOR, ".st-key-query-upload input[type=file]")), "the upload field")
    field.send_keys(str(index.clip))
    _wait(browser, lambda d: f"{CLIP_NAME}.mp4" in d.find_element(By.CSS_SELECTOR, ".st-key-query-upload").text,
          "the uploaded file")
    browser.find_element(By.CSS_SELECTOR, ".st-key-search-button button").click()
    cards = _wait(browser, cards_with_images, "result cards with their stick figures")
    titles = [next(ln for ln in card.text.splitlines() if ln.startswith("#")) for card in cards]
    assert titles[0] == f"#1 {CLIP_NAME}"                              # the indexed copy of the clip
    headings = " ".join(h.text for h in browser.find_elements(By.CSS_SELECTOR, "h3"))
    assert f"Query clip: {CLIP_NAME}.mp4" in headings and f"closest in style to {CLIP_NAME}.mp4" in headings
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "video")) == 2, "the query clip and the hit's clip")
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')
    query_heading = next(h for h in browser.find_elements(By.CSS_SELECTOR, "h3") if "Query clip" in h.text)
    browser.execute_script("arguments[0].scrollIntoView()", query_heading)
    time.sleep(2)   # let the videos show their first frame
    assert browser.save_screenshot(str(SCREENSHOT))
    print(f"screenshot: {SCREENSHOT}")
