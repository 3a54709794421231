"""Write a dataset's takes as seen through the BENCHMARK.md ``2d`` camera, one ``.npz`` per take.

What a pose estimator would give on video of the takes: ``posestyle view-2d`` writes these files so
that ``posestyle ingest`` can make a 2D dataset of them (e.g. the Bandai-Namco takes for the app).
Every take keeps its name (so presets still label it), label and metadata; files are written
atomically, one take at a time, and a take already written is kept.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from encoder.data.atomic import atomic_write_bytes
from encoder.data.camera import benchmark_2d_view
from encoder.data.dataset import DatasetCache
from encoder.data.errors import PoseDataError


@dataclass
class WrittenViews:
    """What ``write_benchmark_2d_views`` did: files written, kept from before, and takes refused."""

    out: Path
    written: int = 0
    kept: int = 0
    errors: list[str] = field(default_factory=list)


def write_benchmark_2d_views(dataset: str | Path, out: str | Path, progress: bool = True) -> WrittenViews:
    """``<out>/<take>.npz``: each 3D take of ``dataset`` through its benchmark camera (2D takes as they are)."""
    cache = DatasetCache.open(dataset)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    report = WrittenViews(folder)
    for name in tqdm(cache.names, desc="2d views", unit="take", disable=not progress, dynamic_ncols=True):
        target = folder / f"{name}.npz"
        if target.is_file():
            report.kept += 1
            continue
        try:
            seq = cache.load(name)
            view = benchmark_2d_view(seq, name) if seq.dims == 3 else seq
        except PoseDataError as err:
            report.errors.append(str(err))
            continue
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **view.with_(name=name, label=seq.label).to_arrays())
        atomic_write_bytes(target, buffer.getvalue())
        report.written += 1
    return report
