"""Video end to end: a small 2D index whose corpus holds demo walks and a clip made from scikit-image's
photo of a person; ``posestyle ingest`` and ``posestyle search --file`` with clips, and the app's
search page with an uploaded clip (query clip beside its skeleton, the hit's source clip)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import cli
from encoder.data.dataset import DatasetCache, ingest
from encoder.data.demo import generate_demo_corpus
from retrieval.index import IndexManager
from retrieval.jobs import ReindexJob, register_dataset
from retrieval.store import MetadataStore, default_database_url
from tests.support.video_clips import person_clip
from tests.support.video_requirements import require_video

WALKS, WALK_FRAMES = 12, 75
CLIP_FRAMES, CLIP_FPS, CLIP_STEP = 48, 24, 4
CLIP_NAME = "runway_clip"
runner = CliRunner()


@dataclass(frozen=True)
class VideoIndex:
    root: Path
    clip: Path


def build_video_index(base: Path, make_checkpoint) -> VideoIndex:
    """2D demo walks + one person clip -> ``ingest`` -> tiny 2D encoder -> live index."""
    raw = base / "raw"
    raw.mkdir()
    for seq in generate_demo_corpus(WALKS, seed=0, views=("2d",), progress=False):
        seq = seq.with_(joints=seq.joints[:WALK_FRAMES], confidence=seq.confidence[:WALK_FRAMES])
        np.savez(raw / f"{seq.name}.npz", **seq.to_arrays())
    clip = person_clip(raw / f"{CLIP_NAME}.mp4", frames=CLIP_FRAMES, fps=CLIP_FPS, step=CLIP_STEP)
    report = ingest([raw], base / "dataset", progress=False)
    assert report.failed == 0 and report.read == WALKS + 1, report.errors
    dataset = DatasetCache.open(base / "dataset")
    checkpoint = base / "encoder2d.safetensors"
    make_checkpoint(checkpoint, 0, dims=2)
    root = base / "index_data"
    with MetadataStore.open(default_database_url(root)) as store:
        register_dataset(store, dataset)
        summary = ReindexJob(store, IndexManager(root, store), dataset, checkpoint, "local", progress=False).run()
    assert summary.failed == 0 and summary.live_version is not None, summary.errors
    return VideoIndex(root=root, clip=clip)


@pytest.fixture(scope="module")
def video_index(tmp_path_factory: pytest.TempPathFactory, make_checkpoint) -> VideoIndex:
    require_video()
    return build_video_index(tmp_path_factory.mktemp("video-index"), make_checkpoint)


def test_ingest_command_reads_a_clip_with_its_frame_rate_and_path(video_index: VideoIndex, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["ingest", str(video_index.clip), "--out", str(tmp_path / "ds"), "--stride", "2"])
    assert result.exit_code == 0, result.output
    (item,) = DatasetCache.open(tmp_path / "ds").items
    assert (item.name, item.fps, item.frames, item.dims) == (CLIP_NAME, CLIP_FPS, CLIP_FRAMES, 2)
    assert item.metadata["video_path"] == str(video_index.clip.resolve()) and item.metadata["stride"] == 2
    assert item.metadata["frames_estimated"] == CLIP_FRAMES // 2 + 1


def test_ingest_command_lists_a_bad_clip_in_one_line_and_keeps_the_good_one(video_index: VideoIndex,
                                                                            tmp_path: Path) -> None:
    bad = tmp_path / "broken.mov"
    bad.write_bytes(b"\x00" * 64 + b"moov" + b"\xff" * 400)
    result = runner.invoke(cli, ["ingest", str(video_index.clip), str(bad), "--out", str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    assert DatasetCache.open(tmp_path / "ds").names == [CLIP_NAME]
    lines = [ln for ln in result.output.splitlines() if "broken.mov" in ln]
    assert len(lines) == 1 and "not a readable video" in lines[0], result.output


def test_search_by_a_video_file_finds_the_indexed_clip_first(video_index: VideoIndex) -> None:
    result = runner.invoke(cli, ["search", "--file", str(video_index.clip), "-k", "4", "--root",
                                 str(video_index.root), "--json"])
    assert result.exit_code == 0, result.output
    (hits,) = json.loads(result.output)
    assert len(hits) == 4
    assert hits[0]["sequence_id"] == CLIP_NAME and hits[0]["score"] > 0.999, hits
    assert hits[0]["metadata"]["source"] == str(video_index.clip.resolve())


def test_search_by_a_corrupt_video_is_a_one_line_usage_error(video_index: VideoIndex, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    result = runner.invoke(cli, ["search", "--file", str(bad), "--root", str(video_index.root)])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: ") and "bad.mp4: not a readable video" in result.output
    assert len(result.output.strip().splitlines()) == 1


def _videos(at) -> list:
    return [el for el in at.get("video")]


@pytest.mark.slow
def test_app_search_with_an_uploaded_clip_shows_clip_skeleton_and_hits(app_test, video_index: VideoIndex) -> None:
    at = app_test(video_index.root).run()
    at.radio(key="query-source").set_value("Upload a pose file").run()
    at.file_uploader(key="query-upload").set_value((f"{CLIP_NAME}.mp4", video_index.clip.read_bytes(), "video/mp4"))
    at.button(key="search-button").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    headers = [h.value for h in at.subheader]
    assert f"Query clip: {CLIP_NAME}.mp4" in headers
    assert any(h.endswith(f"closest in style to {CLIP_NAME}.mp4") for h in headers), headers
    captions = [c.value for c in at.caption]
    assert "source clip" in captions                  # the indexed clip's card shows its video
    assert len(_videos(at)) == 2                      # the query clip and that hit's clip
    cards = len(at.get("image")) - 2     # the query's skeleton GIF, its frames with the pose drawn on
    assert cards >= 4 and cards == len([b for b in at.button if b.key and b.key.startswith("compare-")])
