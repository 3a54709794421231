"""The hostile pose files of issue 12, and a measurement of what reading each one costs.

``write_hostile_files(folder)`` writes them; ``python tests/support/hostile_files.py [--out FILE]``
reads each one in a fresh process through the public ``read_pose_file`` and prints (or writes as
Markdown) its wall and CPU time, the extra peak memory (peak RSS minus RSS after imports) and the outcome.
Only ``read_pose_file(path)`` is used, so the same script measures an older tree:
``PYTHONPATH=/old/tree python tests/support/hostile_files.py``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

SPAN_BOMB = "span_bomb.json"           # 2 frames with ids 0 and 999999
ZIP_BOMB = "zip_bomb.npz"              # 'joints' inflating to (1e6, 33, 3) float64
CROWD_150 = "crowd_150x40.json"        # 150 people x 40 frames, no track ids
CROWD_1000 = "crowd_1000x5.json"       # 1000 people x 5 frames, no track ids
HOSTILE_FILES = (SPAN_BOMB, ZIP_BOMB, CROWD_150, CROWD_1000)
ZIP_BOMB_SHAPE = (1_000_000, 33, 3)


def _person(x: float, y: float) -> dict:
    """A COCO-17 person (flat [x, y, score] * 17) around (x, y)."""
    flat: list[float] = []
    for j in range(17):
        flat += [round(x + (j % 4) * 3.0, 1), round(y + j * 4.0, 1), 0.9]
    return {"keypoints": flat}


def write_span_bomb(path: Path) -> Path:
    """About 500 bytes: one person in frame 0 and in frame 999999."""
    person = {"keypoints": [[10 + j, 20 + 2 * j] for j in range(17)], "score": 0.9}
    path.write_text(json.dumps([{"frame_id": 0, "instances": [person]},
                                {"frame_id": 999_999, "instances": [person]}], separators=(",", ":")))
    return path


def write_zip_bomb(path: Path, shape: tuple[int, ...] = ZIP_BOMB_SHAPE) -> Path:
    """An .npz whose 'joints' member inflates to ``shape`` float64 zeros, written in chunks (the
    array never exists in memory)."""
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    chunk = bytes(8 * 33 * 3 * 10_000)
    total = 8 * int(np.prod(shape))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("joints.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            left = total
            while left > 0:
                member.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)
    return path


def write_crowd(path: Path, people: int, frames: int, seed: int = 0) -> Path:
    """``people`` walkers on a grid, drifting a little per frame, with no track ids."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(people)))
    start = np.array([[(i % side) * 120.0, (i // side) * 160.0] for i in range(people)])
    doc = []
    for t in range(frames):
        pos = start + t * 2.0 + rng.normal(0, 1.0, start.shape)
        order = rng.permutation(people)
        doc.append({"frame_id": t, "instances": [_person(*pos[i]) for i in order]})
    path.write_text(json.dumps(doc, separators=(",", ":")))
    return path


def write_hostile_files(folder: Path) -> dict[str, Path]:
    """Every hostile file under ``folder``; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    return {SPAN_BOMB: write_span_bomb(folder / SPAN_BOMB), ZIP_BOMB: write_zip_bomb(folder / ZIP_BOMB),
            CROWD_150: write_crowd(folder / CROWD_150, 150, 40),
            CROWD_1000: write_crowd(folder / CROWD_1000, 1000, 5, seed=1)}


# Runs in a fresh interpreter: import the reader, note RSS, read, report time, peak RSS and outcome.
_CHILD = r'''
import json, sys, time
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
from encoder.data.readers import read_pose_file
from encoder.data.errors import PoseDataError
base = rss("VmRSS:")
start, cpu = time.perf_counter(), time.process_time()
try:
    seqs = read_pose_file(sys.argv[1])
    outcome = f"read: {len(seqs)} sequence(s), {seqs[0].num_frames} frames"
except PoseDataError as err:
    outcome = f"refused: {err}"
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "extra_mb": (rss("VmHWM:") - base) / 1e6,
                  "outcome": outcome}))
'''


def measure(path: Path) -> dict:
    """Wall and CPU time, extra peak memory and outcome of ``read_pose_file(path)`` in a fresh process."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path.resolve())], capture_output=True, text=True,
                          check=True, cwd=path.parent)   # not the repo: PYTHONPATH picks the tree measured
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="append a Markdown table here")
    parser.add_argument("--label", default="this tree", help="what is measured (table caption)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
        paths = write_hostile_files(Path(folder))
        rows = []
        for name, path in paths.items():
            result = measure(path)
            size = path.stat().st_size
            rows.append(f"| {name} | {size / 1024:.1f} KiB | {result['seconds']:.2f} s | "
                        f"{result['cpu_seconds']:.2f} s | "
                        f"{result['extra_mb']:.0f} MB | {result['outcome'].replace(folder + '/', '')[:150]} |")
            print(rows[-1], flush=True)
    if args.out:
        table = ["", f"{args.label}:", "", "| file | size | wall time | CPU time | extra peak memory | outcome |",
                 "|---|---|---|---|---|---|", *rows, ""]
        with args.out.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(table))


if __name__ == "__main__":
    main()
