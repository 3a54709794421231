"""The app as a user meets it: ``posestyle app`` in its own process on a free localhost port, and
Debian's headless Chromium (Selenium through /usr/bin/chromedriver) to look at it.

Shared by ``posestyle bench demo`` (time to a first screen) and the browser tests, so both start,
probe and stop the server the same way.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


class AppDidNotStart(RuntimeError):
    """``posestyle app`` exited or stayed unhealthy past its deadline; the message ends with its log."""


def free_port() -> int:
    """A localhost TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_healthy(url: str) -> bool:
    """True when the Streamlit server at ``url`` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read().strip() == b"ok"
    except OSError:
        return False


@contextmanager
def serve_app(root: Path, log: Path, *, start_timeout_s: float = 300.0, cwd: Path | None = None,
              env: Mapping[str, str] | None = None) -> Iterator[tuple[str, float]]:
    """``posestyle app --root root`` on a free port until healthy; yields its URL and the seconds it took
    to answer healthy, and stops it afterwards. Its output goes to ``log``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", **(env or {})}
    start = time.perf_counter()
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "app.cli", "app", "--root", str(root.resolve()),
                                    "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                   env=environment)
    try:
        while not app_healthy(url):
            if process.poll() is not None or time.perf_counter() - start > start_timeout_s:
                raise AppDidNotStart(f"posestyle app did not come up on {url}:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url, time.perf_counter() - start
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def browser_missing() -> list[str]:
    """What headless Chromium still needs on this machine (empty when it can run)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    return missing


@contextmanager
def headless_chromium(profile: Path, window: str = "1400,1000") -> Iterator[Any]:
    """A Selenium driver for headless Chromium with a fresh profile and nothing that reaches the network
    on its own; quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={profile}", f"--window-size={window}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


HIT_CARD = '[class*="st-key-hit-card-"]'


def cards_with_images(driver: Any) -> list[Any]:
    """The Search page's hit cards, once every card's stick-figure image has loaded (else empty)."""
    from selenium.webdriver.common.by import By

    cards = driver.find_elements(By.CSS_SELECTOR, HIT_CARD)
    images = driver.find_elements(By.CSS_SELECTOR, f"{HIT_CARD} img")
    loaded = all(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
                 for i in images)
    return cards if cards and len(images) == len(cards) and loaded else []


def search_by_id(driver: Any, query: str, timeout_s: float, hits: int | None = None) -> list[Any]:
    """On the open Search page: pick ``query`` in the id picker, press Search and wait until the hit
    cards (``hits`` of them when given; cards arrive one by one) and their figures are drawn; returns
    the cards."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout_s)
    box = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-query-id input")))
    box.click()
    box.send_keys(query)
    wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, '[role="option"]')))
    box.send_keys(Keys.ENTER)
    wait.until(lambda d: query in (d.find_element(By.CSS_SELECTOR, ".st-key-query-id input").get_attribute("value")
                                   or ""))
    driver.find_element(By.CSS_SELECTOR, ".st-key-search-button button").click()
    return list(wait.until(lambda d: (cards := cards_with_images(d)) and (hits is None or len(cards) == hits)
                           and cards))
