"""Shared test fixtures. The real data lives outside the repo at ``<repo>/../shared/data``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

# One OpenMP thread per process: the suite runs on 2 shared cores, where spinning OpenMP pools
# (torch, faiss) in several processes slow every test down many times over.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest

from encoder.data.sequence import PoseSequence
from tests.encoder.toy_data import toy_corpus

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA_DIR = (REPO_ROOT / ".." / "shared" / "data").resolve()
BANDAI_DATA_DIR = SHARED_DATA_DIR / "bandai-namco-motion-2"


def require_shared_data(*parts: str) -> Path:
    """Path under the shared data folder, or skip the calling test when it is absent."""
    path = SHARED_DATA_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """``<repo>/../shared/data``; the test is skipped when it is absent."""
    return require_shared_data()


@pytest.fixture()
def one_torch_thread() -> Iterator[None]:
    """Run a test on one torch thread (tests share a small CPU; oversubscribed threads crawl)."""
    from encoder.inference import torch_threads  # imported here: collecting the tests needs no torch

    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def make_toy_corpus() -> Callable[..., list[PoseSequence]]:
    """``toy_corpus`` (tests/encoder/toy_data.py): toy walks of three styles."""
    return toy_corpus
