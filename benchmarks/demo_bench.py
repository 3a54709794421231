"""``posestyle bench demo``: what a new user waits for and sees in the first minutes.

Cold: ``posestyle demo --no-app`` in an empty folder (each step timed from its output), then
``posestyle app`` until healthy, then each page in headless Chromium until its script has finished
(title drawn, no spinner, no running-status widget). Warm: the same again over the built folder.
Quality: ``posestyle evaluate`` of the demo encoder on the held-out part of the demo's ``auto``
split (accuracy, leave-one-out P@5, the closest confusions), and the README's example query's top 5.
Writes ``docs/benchmarks/demo.{md,json}``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.app_process import browser_missing, headless_chromium, search_by_id, serve_app
from benchmarks.machine import cpu_model, load_average
from benchmarks.tables import markdown_table

README_QUERY = "demo-strong_control-00004"
PAGES: dict[str, str] = {"search": "Search by style", "explore": "Explore the style space",
                         "evaluate": "Evaluate the live index"}
MARKER = ".posestyle-demo-bench"      # the bench only ever deletes a folder that carries it
PAGE_WAIT_S = 300.0
SCREENS = "demo-screens"          # under the report folder: each page after a search, from the warm pass
SCREEN_WINDOW = "1400,1800"


@dataclass
class PhaseTimes:
    """Seconds of one pass (cold or warm): the demo's steps, the app's start-up and each page's first load."""

    demo_steps: dict[str, float] = field(default_factory=dict)
    demo_total_s: float = 0.0
    app_start_s: float = 0.0
    pages_s: dict[str, float] = field(default_factory=dict)

    @property
    def first_screen_s(self) -> float:
        """From typing the command to the Search page drawn."""
        return self.demo_total_s + self.app_start_s + self.pages_s.get("search", float("nan"))


@dataclass
class DemoQuality:
    """The demo encoder on the held-out walks, and the README's example query."""

    held_out_walks: int
    accuracy: float
    macro_f1: float
    loo_p_at_5: float
    gallery_p_at_5: float | None
    purity: float | None
    closest_confusions: list[tuple[str, str, int]]
    readme_query: str
    readme_query_top5: list[str]
    training: str = ""


@dataclass
class DemoBenchReport:
    command: str
    machine: dict[str, Any]
    n_walks: int
    cold: PhaseTimes
    warm: PhaseTimes
    quality: DemoQuality
    encoder: str


def _python_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def _timed_demo(root: Path, n: int, log: Path) -> tuple[float, dict[str, float]]:
    """Run ``posestyle demo --no-app``; each step's seconds from the time its ``$ posestyle`` line appears."""
    start = time.perf_counter()
    marks: list[tuple[str, float]] = []
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        process = subprocess.Popen(_python_cli("demo", "--no-app", "--root", str(root), "--n", str(n)),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            if line.startswith("$ posestyle "):
                marks.append((line.split()[2], time.perf_counter()))
            elif "training skipped" in line:
                marks.append(("train", time.perf_counter()))
        if process.wait() != 0:
            raise RuntimeError(f"posestyle demo failed; log: {log}")
    total = time.perf_counter() - start
    ends = [t for _, t in marks[1:]] + [start + total]
    return total, {name: round(end - begin, 1) for (name, begin), end in zip(marks, ends)}


def _page_drawn(driver: Any, title: str) -> bool:
    from selenium.webdriver.common.by import By

    heads = driver.find_elements(By.CSS_SELECTOR, "h1")
    busy = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSpinner"], [data-testid="stStatusWidget"]')
    return bool(heads) and heads[0].text == title and not busy


def _page_times(url: str, workdir: Path) -> dict[str, float]:
    """Seconds from asking for each page to its script finished, pages in order, one fresh browser."""
    from selenium.webdriver.support.ui import WebDriverWait

    times: dict[str, float] = {}
    with headless_chromium(workdir / "chromium-profile") as driver:
        for path, title in PAGES.items():
            start = time.perf_counter()
            driver.get(f"{url}/{path}")
            time.sleep(0.5)       # let the page's script start before "no status widget" can count as done
            WebDriverWait(driver, PAGE_WAIT_S, poll_frequency=0.1).until(lambda d, t=title: _page_drawn(d, t))
            times[path] = round(time.perf_counter() - start, 1)
    return times


def _capture_pages(url: str, workdir: Path, screens: Path) -> list[Path]:
    """A screenshot of each page after a search for the README's query: ``screens/<page>.png``."""
    from selenium.webdriver.support.ui import WebDriverWait

    screens.mkdir(parents=True, exist_ok=True)
    shots = []
    with headless_chromium(workdir / "chromium-screens", SCREEN_WINDOW) as driver:
        for path, title in {**PAGES, "index": None}.items():
            driver.get(f"{url}/{path}")
            time.sleep(0.5)
            if title is not None:
                WebDriverWait(driver, PAGE_WAIT_S).until(lambda d, t=title: _page_drawn(d, t))
            if path == "search":
                search_by_id(driver, README_QUERY, PAGE_WAIT_S, hits=8)
            time.sleep(2.0)          # charts finish their entry transition
            shots.append(screens / f"{path}.png")
            driver.save_screenshot(str(shots[-1]))
    return shots


def _pass(root: Path, n: int, workdir: Path, name: str, browser: bool, screens: Path | None = None) -> PhaseTimes:
    total, steps = _timed_demo(root, n, workdir / f"demo-{name}.log")
    times = PhaseTimes(demo_steps=steps, demo_total_s=round(total, 1))
    with serve_app(root, workdir / f"app-{name}.log", start_timeout_s=PAGE_WAIT_S) as (url, start_s):
        times.app_start_s = round(start_s, 1)
        if browser:
            times.pages_s = _page_times(url, workdir)
            if screens is not None:
                _capture_pages(url, workdir, screens)
    return times


def _quality(root: Path, workdir: Path) -> tuple[DemoQuality, str]:
    from encoder.checkpoint import load_checkpoint
    from encoder.evaluation.results import StyleMetrics

    checkpoint = next((root / "models").glob("demo-*.safetensors"))
    trained = load_checkpoint(checkpoint)[1].training
    config = trained["config"]
    training = (f"{trained['epochs_run']} epochs (best {trained['best_epoch']}) of {config['train_windows'] or 'all'}"
                f"-window crops on {trained['n_train']} walks, augmented copies "
                f"{'on' if config['augment']['enabled'] else 'off'}, dropout {config['model_config'].get('dropout')}; "
                f"{trained['train_seconds']:.0f} s")
    report = workdir / "evaluate"
    subprocess.run(_python_cli("evaluate", str(checkpoint), "--data", str(root / "demo" / "dataset"), "--split",
                               "auto", "--out", str(report), "--no-cost"), check=True, capture_output=True)
    metrics = StyleMetrics.from_dict(json.loads((report / "metrics.json").read_text()))
    cls = metrics.classification
    assert cls is not None
    confusions = Counter({(cls.labels[i], cls.labels[j]): count for i, row in enumerate(cls.confusion)
                          for j, count in enumerate(row) if i != j and count})
    found = subprocess.run(_python_cli("search", "--root", str(root), "--id", README_QUERY, "-k", "5", "--json"),
                           check=True, capture_output=True, text=True)
    top5 = [str(hit["metadata"].get("label")) for hit in json.loads(found.stdout)[0]]
    quality = DemoQuality(
        held_out_walks=metrics.n, accuracy=cls.accuracy, macro_f1=cls.macro_f1,
        loo_p_at_5=float(metrics.leave_one_out.p(5) or 0.0),
        gallery_p_at_5=None if metrics.gallery is None else metrics.gallery.p(5),
        purity=metrics.embedding.purity, closest_confusions=[(a, b, c) for (a, b), c in confusions.most_common(6)],
        readme_query=README_QUERY, readme_query_top5=top5, training=training)
    return quality, checkpoint.name


def run_demo_bench(root: Path, out: Path, n: int, command: str) -> DemoBenchReport:
    """Cold pass in an empty ``root``, warm pass over it, then the quality checks; writes the report."""
    if root.exists():
        if not (root / MARKER).is_file():
            raise ValueError(f"{root}: exists and is not a demo-bench folder (no {MARKER}); choose another --root")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("made by posestyle bench demo; deleted by its next run\n")
    browser = not browser_missing()
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "load_before": load_average()}
    with tempfile.TemporaryDirectory(prefix="demo-bench-") as tmp:
        workdir = Path(tmp)
        cold = _pass(root, n, workdir, "cold", browser)
        warm = _pass(root, n, workdir, "warm", browser, screens=out / SCREENS)
        quality, encoder = _quality(root, workdir)
    machine["load_after"] = load_average()
    report = DemoBenchReport(command=command, machine=machine, n_walks=n, cold=cold, warm=warm,
                             quality=quality, encoder=encoder)
    write_demo_report(report, out)
    return report


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def write_demo_report(report: DemoBenchReport, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    document = {**asdict(report), "cold_first_screen_s": report.cold.first_screen_s,
                "warm_first_screen_s": report.warm.first_screen_s}
    (out / "demo.json").write_text(json.dumps(document, indent=1) + "\n")
    q, cold, warm = report.quality, report.cold, report.warm
    steps = list(cold.demo_steps) + [s for s in warm.demo_steps if s not in cold.demo_steps]
    rows = [[f"demo step: {s}", f"{cold.demo_steps.get(s, 0):.1f}", f"{warm.demo_steps.get(s, 0):.1f}"]
            for s in steps]
    rows += [["demo command, total", f"{cold.demo_total_s:.1f}", f"{warm.demo_total_s:.1f}"],
             ["app: start until healthy", f"{cold.app_start_s:.1f}", f"{warm.app_start_s:.1f}"]]
    rows += [[f"page /{p}: first load", f"{cold.pages_s.get(p, float('nan')):.1f}",
              f"{warm.pages_s.get(p, float('nan')):.1f}"] for p in PAGES]
    rows.append(["**first screen (command to Search drawn)**", f"**{cold.first_screen_s:.1f}**",
                 f"**{warm.first_screen_s:.1f}**"])
    top5 = ", ".join(q.readme_query_top5)
    own = sum(label == q.readme_query.split("-")[1] for label in q.readme_query_top5)
    lines = [
        "# The demo: time to a first screen, and what it shows",
        "",
        f"Command: `{report.command}`. Machine: {report.machine['cpu']}, {report.machine['cores']} cores, "
        f"load average before {report.machine['load_before']}, after {report.machine['load_after']}. "
        f"{report.n_walks} demo walks; encoder `{report.encoder}`, trained by the cold run: {q.training}.",
        "",
        "Cold: `posestyle demo --no-app` in an empty folder, then `posestyle app`, then each page in headless "
        "Chromium until its script finished. Warm: the same again over the built folder. Seconds.",
        "",
        markdown_table(["", "cold", "warm"], rows),
        "",
        f"## Quality on the {q.held_out_walks} held-out walks (`posestyle evaluate ... --split auto`)",
        "",
        markdown_table(["accuracy", "macro-F1", "leave-one-out P@5", "gallery P@5", "k-means purity"],
                       [[_fmt(q.accuracy), _fmt(q.macro_f1), _fmt(q.loo_p_at_5), _fmt(q.gallery_p_at_5),
                         _fmt(q.purity)]]),
        "",
        "Closest confusions (true -> predicted, held-out walks): "
        + "; ".join(f"{a} -> {b} ({c})" for a, b, c in q.closest_confusions) + ".",
        "",
        f"README example query `{q.readme_query}`, top 5: {top5} ({own} of 5 its own style).",
        "",
        "Each page after searching with that query (warm pass): "
        + ", ".join(f"[{page}]({SCREENS}/{page}.png)" for page in (*PAGES, "index")) + ".",
        "",
    ]
    (out / "demo.md").write_text("\n".join(lines))
