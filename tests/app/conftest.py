"""App test fixtures: a small live index (tiny synthetic dataset + untrained tiny checkpoint, built with
the real ingest, checkpoint and re-index APIs) and helpers to run the Streamlit app under AppTest."""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from encoder.checkpoint import CheckpointMeta, save_checkpoint
from encoder.data.dataset import DatasetCache, ingest
from encoder.data.demo import STYLE_CLASSES, generate_demo_corpus
from encoder.data.preprocess import PreprocessConfig
from encoder.models import PoseStyleNetConfig, build_model, config_to_dict
from retrieval.index import IndexManager
from retrieval.jobs import ReindexJob, register_dataset
from retrieval.store import MetadataStore, default_database_url

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_MAIN = REPO_ROOT / "app" / "ui" / "main.py"
WALKS = 18            # three per style
FRAMES = 75           # 2.5 s at 30 fps: enough windows, quick to embed
EMBEDDING_DIM = 16
APP_TIMEOUT_S = 120   # AppTest run timeout: the first run loads torch, the model and the index


@dataclass(frozen=True)
class SmallIndex:
    """A data root with a live index over ``sequence_ids``, and where its inputs lie."""

    root: Path
    dataset: Path
    checkpoint: Path
    raw_dir: Path
    sequence_ids: list[str]
    labels: dict[str, str]


def tiny_checkpoint(path: Path, seed: int = 0, dims: int = 3) -> str:
    """An untrained, tiny PoseStyle-Net for ``dims``-D input at ``path``; returns its encoder version."""
    torch.manual_seed(seed)
    config = PoseStyleNetConfig(in_dims=dims, embedding_dim=EMBEDDING_DIM, branch_channels=(8, 8, 8),
                                relation_dim=16, num_relation_layers=1)
    meta = CheckpointMeta(model_name="posestyle_net", model_config=config_to_dict(config),
                          preprocess_config=asdict(PreprocessConfig(max_segments=4)), labels=STYLE_CLASSES,
                          input_dims=dims)
    return save_checkpoint(path, build_model("posestyle_net", config), meta).encoder_version


def build_small_index(base: Path) -> SmallIndex:
    """Demo walks -> .npz pose files -> ``ingest`` -> store registration -> ``ReindexJob`` (live index)."""
    raw_dir = base / "raw"
    raw_dir.mkdir(parents=True)
    walks = [s.with_(joints=s.joints[:FRAMES], confidence=s.confidence[:FRAMES])
             for s in generate_demo_corpus(WALKS, seed=0, views=("3d",), progress=False)]
    for seq in walks:
        np.savez(raw_dir / f"{seq.name}.npz", **seq.to_arrays())
    report = ingest([raw_dir], base / "dataset", progress=False)
    assert report.failed == 0, report.errors
    dataset = DatasetCache.open(base / "dataset")
    checkpoint = base / "encoder.safetensors"
    tiny_checkpoint(checkpoint)
    root = base / "index_data"
    with MetadataStore.open(default_database_url(root)) as store:
        register_dataset(store, dataset)
        summary = ReindexJob(store, IndexManager(root, store), dataset, checkpoint, "local", progress=False).run()
    assert summary.failed == 0 and summary.live_version is not None, summary.errors
    return SmallIndex(root=root, dataset=base / "dataset", checkpoint=checkpoint, raw_dir=raw_dir,
                      sequence_ids=sorted(s.name for s in walks), labels={s.name: str(s.label) for s in walks})


@pytest.fixture(scope="session")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> SmallIndex:
    """One small live index shared by the app tests (tests must not change it; copy it first)."""
    return build_small_index(tmp_path_factory.mktemp("app-index"))


@pytest.fixture
def app_argv(monkeypatch: pytest.MonkeyPatch):
    """Set the script arguments the app reads (``streamlit run main.py -- --root ROOT``)."""
    def set_root(root: Path, store_url: str | None = None) -> None:
        argv = [str(APP_MAIN), "--root", str(root)]
        if store_url:
            argv += ["--store", store_url]
        monkeypatch.setattr(sys, "argv", argv)
    return set_root


@pytest.fixture
def app_test(app_argv):
    """An AppTest of the app's entry script over ``root`` (not run yet)."""
    from streamlit.testing.v1 import AppTest

    def make(root: Path, store_url: str | None = None) -> AppTest:
        app_argv(root, store_url)
        return AppTest.from_file(str(APP_MAIN), default_timeout=APP_TIMEOUT_S)
    return make


@pytest.fixture
def index_copy(small_index: SmallIndex, tmp_path: Path) -> Path:
    """A private copy of the small index's data root without derived caches, for tests that change
    it (the store keeps pointing at the shared dataset and checkpoint, which nothing changes)."""
    import shutil

    root = tmp_path / "index_data"
    shutil.copytree(small_index.root, root, ignore=shutil.ignore_patterns("cache"))
    return root


@pytest.fixture(scope="session")
def make_checkpoint():
    """``make_checkpoint(path, seed, dims=3) -> encoder version``: another untrained tiny encoder."""
    return tiny_checkpoint


@pytest.fixture
def build_index():
    """``build_index(folder) -> SmallIndex``: a fresh small index a test may damage."""
    def build(base: Path) -> SmallIndex:
        base.mkdir(parents=True)
        return build_small_index(base)
    return build
