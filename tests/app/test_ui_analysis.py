"""``app.services.analysis``, the service the app's pages call: upload handling, motion for display, the
per-version caches (atomic, reused, rebuilt when damaged) and cluster quality."""
from __future__ import annotations

import json

import numpy as np
import pytest

import encoder.evaluation.plots as plots
from app.services.analysis import AppService, NoIndexError, motion_view, read_uploaded_pose, safe_upload_name
from encoder.data.dataset import DatasetCache
from encoder.data.errors import PoseDataError
from encoder.data.preprocess import normalize_center_scale
from encoder.data.skeleton import LEFT_HIP, RIGHT_HIP
from encoder.evaluation.metrics import compute_metrics
from encoder.inference import StyleEncoder


@pytest.mark.parametrize("name, safe", [
    ("walk.bvh", "walk.bvh"),
    ("../../etc/passwd.json", "passwd.json"),
    ("C:\\Users\\me\\My Walk (1).NPZ", "My_Walk_1.npz"),
    ("..", "upload"),
    ("/", "upload"),
    ("a" * 300 + ".npy", "a" * 100 + ".npy"),
    ("we\x00ird\n.json", "we_ird.json"),
])
def test_upload_names_are_sanitised(name: str, safe: str) -> None:
    assert safe_upload_name(name) == safe


def test_upload_limits_and_reading(small_index) -> None:
    data = (small_index.raw_dir / f"{small_index.sequence_ids[0]}.npz").read_bytes()
    with pytest.raises(PoseDataError, match=r"^walk\.npz: file is .* over the upload limit of 0 MB$"):
        read_uploaded_pose("walk.npz", data, max_bytes=len(data) - 1)
    with pytest.raises(PoseDataError, match=r"^walk\.npz: file is empty$"):
        read_uploaded_pose("walk.npz", b"")
    (seq,) = read_uploaded_pose("../x/walk.npz", data)
    assert seq.source == "upload:walk.npz"
    expected = DatasetCache.open(small_index.dataset).load(small_index.sequence_ids[0])
    np.testing.assert_array_equal(seq.joints, expected.joints)


def test_motion_view_of_3d_and_2d_sequences(small_index) -> None:
    seq = DatasetCache.open(small_index.dataset).load(small_index.sequence_ids[3])
    view = motion_view(seq)
    assert view.drawing.shape == (seq.num_frames, 17, 2) and view.axes == ("lateral", "vertical", "forward")
    mid_hip_x = (view.drawing[:, LEFT_HIP, 0] + view.drawing[:, RIGHT_HIP, 0]) / 2
    np.testing.assert_allclose(mid_hip_x, 0.0, atol=1e-5)              # the walker stays in place
    np.testing.assert_allclose(view.drawing[:, :, 1], seq.joints[:, :, 1], atol=1e-5)   # height kept
    np.testing.assert_allclose(view.times[-1], (seq.num_frames - 1) / seq.fps)

    flat = seq.with_(joints=seq.joints[:, :, :2] * np.array([100.0, -100.0]) + 500.0)   # image pixels, y down
    view2d = motion_view(flat)
    assert view2d.axes == ("horizontal", "vertical")
    up = flat.joints * np.array([1.0, -1.0])
    np.testing.assert_allclose(view2d.trajectories, normalize_center_scale(up, flat.confidence), atol=1e-5)
    assert (view2d.drawing[:, 0, 1] > view2d.drawing[:, 15, 1]).all()   # nose above the ankle


def test_embedding_map_is_stored_once_per_version_and_rebuilt_when_damaged(small_index, index_copy,
                                                                          monkeypatch) -> None:
    calls = []

    def layout(vectors: np.ndarray) -> tuple[np.ndarray, str]:
        calls.append(len(vectors))
        return vectors[:, :2].astype(np.float64), "fake"

    monkeypatch.setattr(plots, "embedding_map", layout)
    service = AppService(index_copy)
    live = service.open_live()
    first = service.embedding_map(live)
    path = service.cache_path("umap", live.version)
    assert calls == [len(small_index.sequence_ids)] and path.is_file()
    assert not list(path.parent.glob(".*"))                            # no temp file left behind
    again = service.embedding_map(live)
    assert calls == [len(small_index.sequence_ids)]                    # read back, not recomputed
    assert again.sequence_ids == first.sequence_ids and np.array_equal(again.coords, first.coords)
    assert again.method == "fake"
    path.write_bytes(b"truncated")
    assert service.embedding_map(live).sequence_ids == first.sequence_ids and len(calls) == 2
    service.close()


def test_cluster_quality_is_the_metrics_module_over_the_live_index(small_index, index_copy) -> None:
    service = AppService(index_copy)
    live = service.open_live()
    assert not service.cache_path("predictions", live.version).exists()
    ids, vectors = service.embeddings(live)
    labels = [small_index.labels[s] for s in ids]
    quality = service.cluster_quality(live)
    assert quality.metrics == compute_metrics(vectors, None, labels, k_means_restarts=10, seed=0)
    assert (quality.k, quality.n, quality.unlabelled) == (len(set(labels)), len(ids), 0)
    assert quality.purity == quality.metrics.embedding.purity
    predicted, _ = StyleEncoder.load(small_index.checkpoint).predict(
        [DatasetCache.open(small_index.dataset).load(s) for s in ids])
    assert quality.classification is not None
    matrix = np.asarray(quality.classification.confusion)
    assert matrix.sum() == len(ids)
    assert quality.classification.accuracy == pytest.approx(np.mean(np.asarray(predicted) == np.asarray(labels)))
    assert service.cache_path("predictions", live.version).is_file()
    stored = json.loads(service.cache_path("quality", live.version).with_suffix(".json").read_text())
    assert stored["metrics"] == json.loads(json.dumps(quality.metrics.to_dict()))      # the old nested layout
    with AppService(index_copy) as again:                                              # read from the stored file
        assert again.cluster_quality(again.open_live()) == quality
    with pytest.raises(ValueError, match="k must be between 1 and"):
        service.cluster_quality(live, k=len(ids) + 1)
    service.close()


def test_an_empty_root_is_a_clear_error_and_stays_untouched(tmp_path) -> None:
    service = AppService(tmp_path / "none")
    assert service.live_pointer() is None and service.index_versions() == [] and service.jobs() == []
    with pytest.raises(NoIndexError, match="posestyle index --data"):
        service.open_live()
    assert not (tmp_path / "none").exists()


def test_predictions_come_from_the_index_vectors_and_match_a_second_pass(index_copy) -> None:
    with AppService(index_copy) as service:
        live = service.open_live()
        assert live.searcher.exact_vectors          # a flat index keeps its vectors as added
        from_vectors = service.style_predictions(live)
        service.cache_path("predictions", live.version).unlink()
        live.searcher.exact_vectors = False         # as for a PQ index: every take loaded and embedded again
        second_pass = service.style_predictions(live)
    assert from_vectors is not None and second_pass is not None
    assert from_vectors.sequence_ids == second_pass.sequence_ids and not second_pass.failures
    np.testing.assert_allclose(from_vectors.logits, second_pass.logits, atol=1e-4)
