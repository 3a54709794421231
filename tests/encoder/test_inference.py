"""StyleEncoder: load, embed, predict, explain; views; determinism; bad input."""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from encoder.checkpoint import CheckpointMeta
from encoder.data.errors import PoseDataError
from encoder.data.preprocess import PreprocessConfig
from encoder.data.skeleton import BODY_REGIONS
from encoder.inference import StyleEncoder, frontal_2d_view, frontal_camera
from encoder.models import build_model, config_to_dict
from tests.encoder.toy_data import toy_walk

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def saved_encoder(trained_toy, tmp_path_factory):
    path = tmp_path_factory.mktemp("enc") / "toy.safetensors"
    trained_toy.save(path)
    return path, StyleEncoder.load(path)


@pytest.mark.slow   # uses trained_toy: a 25-epoch training run
def test_properties(saved_encoder, trained_toy):
    _, enc = saved_encoder
    assert enc.version == trained_toy.checkpoint.encoder_version and len(enc.version) == 12
    assert enc.dim == 16 and enc.input_dims == 2 and enc.model_name == "posestyle_net"
    assert enc.labels == list(trained_toy.checkpoint.labels)
    assert not enc.model.training


@pytest.mark.slow   # uses trained_toy: a 25-epoch training run
def test_embed_is_unit_norm_deterministic_and_survives_reload(saved_encoder, trained_toy, make_toy_corpus):
    path, enc = saved_encoder
    seqs = make_toy_corpus(3, dims=2, seed=11)
    emb = enc.embed(seqs)
    assert emb.shape == (9, 16) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(enc.embed(seqs), emb)                         # same input, same output
    np.testing.assert_array_equal(StyleEncoder.load(path).embed(seqs), emb)     # checkpoint round trip
    in_memory = StyleEncoder(trained_toy.model, trained_toy.checkpoint)
    np.testing.assert_array_equal(in_memory.embed(seqs), emb)
    # batch composition does not matter (beyond float rounding)
    singles = np.concatenate([enc.embed([s]) for s in seqs[:4]])
    np.testing.assert_allclose(singles, emb[:4], atol=1e-5)
    np.testing.assert_allclose(enc.embed(seqs, batch_size=2), emb, atol=1e-5)
    assert enc.embed([]).shape == (0, 16)


def test_predict_and_logits(saved_encoder, make_toy_corpus):
    _, enc = saved_encoder
    seqs = make_toy_corpus(2, dims=2, seed=12)
    labels, probs = enc.predict(seqs)
    assert probs.shape == (6, len(enc.labels))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert labels == [enc.labels[k] for k in probs.argmax(axis=1)]
    emb, logits = enc.embed_and_logits(seqs)
    np.testing.assert_array_equal(emb, enc.embed(seqs))
    assert np.array_equal(logits.argmax(axis=1), probs.argmax(axis=1))
    # the head over the embeddings alone gives the same logits (the app predicts indexed takes this way)
    np.testing.assert_allclose(enc.logits_from_embeddings(emb), logits, atol=1e-4)
    enc.mirror_tta = True
    try:
        assert enc.logits_from_embeddings(emb) is None      # averaged logits are not the averaged embedding's
    finally:
        enc.mirror_tta = False


def test_explain(saved_encoder, make_toy_corpus):
    _, enc = saved_encoder
    seq = make_toy_corpus(1, dims=2, frames=120, seed=13)[0]
    out = enc.explain(seq)
    m = enc.prepare(seq).num_segments
    assert out["phases"].shape == (m,) and np.all(np.diff(out["phases"]) > 0)
    assert out["segment_weights"].shape == (m,)
    assert out["segment_weights"].sum() == pytest.approx(1.0, abs=1e-4)
    assert set(out["region_weights"]) == set(BODY_REGIONS)
    assert sum(out["region_weights"].values()) == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(out["embedding"], enc.embed([seq])[0], atol=1e-5)
    assert out["label"] in enc.labels


def test_3d_input_to_2d_encoder_uses_the_frontal_camera(saved_encoder, make_toy_corpus):
    _, enc = saved_encoder
    seq3d = make_toy_corpus(1, dims=3, seed=14)[0]          # toy walkers face +Z
    cam = frontal_camera(seq3d)
    assert min(cam.yaw_deg, 360 - cam.yaw_deg) < 10 and cam.pitch_deg == 0.0 and cam.distance >= 6.0
    view = frontal_2d_view(seq3d)
    assert view.dims == 2 and view.metadata["view"] == "2d-frontal"
    left, right = 11, 12                                     # facing the camera: the left hip is on image right
    assert np.mean(view.joints[:, left, 0] > view.joints[:, right, 0]) > 0.9
    np.testing.assert_array_equal(enc.embed([seq3d]), enc.embed([view]))


def test_2d_input_to_3d_encoder_is_an_error(tiny_model_config, make_toy_corpus):
    model = build_model("posestyle_net", {**tiny_model_config, "in_dims": 3, "num_classes": 3})
    meta = CheckpointMeta(model_name="posestyle_net", model_config=config_to_dict(model.config),
                          preprocess_config=asdict(PreprocessConfig()), labels=("a", "b", "c"), input_dims=3)
    enc = StyleEncoder(model, meta)
    assert enc.embed(make_toy_corpus(1, dims=3)).shape == (3, 16)
    with pytest.raises(PoseDataError, match="needs 3D input"):
        enc.embed(make_toy_corpus(1, dims=2))


def test_bad_sequence_does_not_lose_the_others(saved_encoder, make_toy_corpus):
    _, enc = saved_encoder
    seqs = make_toy_corpus(1, dims=2, seed=15)
    bad = seqs[1].with_(confidence=np.zeros_like(seqs[1].confidence), source="toy/broken")
    emb, errors = enc.embed_with_errors([seqs[0], bad, seqs[2]])
    assert errors[0] is None and errors[2] is None and "toy/broken" in str(errors[1])
    assert not emb[1].any()
    np.testing.assert_allclose(emb[[0, 2]], enc.embed([seqs[0], seqs[2]]), atol=1e-5)
    with pytest.raises(PoseDataError, match="toy/broken"):
        enc.embed([bad])


def test_mirror_segments_equals_preprocessing_the_mirrored_take(make_toy_corpus):
    from encoder.data.preprocess import mirror_segments, preprocess_sequence
    from encoder.training.augment import mirror_sequence

    seq = make_toy_corpus(1, dims=2)[0]
    direct = preprocess_sequence(mirror_sequence(seq))
    fast = mirror_segments(preprocess_sequence(seq))
    np.testing.assert_allclose(fast.positions, direct.positions, atol=1e-4)
    np.testing.assert_allclose(fast.velocity, direct.velocity, atol=1e-2)
    np.testing.assert_array_equal(fast.joint_mask, direct.joint_mask)


def _untrained_encoder(tiny_model_config, preprocess: dict) -> StyleEncoder:
    model = build_model("posestyle_net", {**tiny_model_config, "num_classes": 3})
    meta = CheckpointMeta(model_name="posestyle_net", model_config=config_to_dict(model.config),
                          preprocess_config=preprocess, labels=("a", "b", "c"), input_dims=2)
    return StyleEncoder(model, meta)


def test_encoder_embeds_with_side_by_side_windows_unless_the_checkpoint_predates_them(
        tiny_model_config):
    seq = toy_walk("swaying", np.random.default_rng(3), frames=150)
    config = PreprocessConfig()
    current = _untrained_encoder(tiny_model_config, asdict(config))
    legacy_meta = {k: v for k, v in asdict(config).items() if k != "inference_window_stride"}
    legacy = _untrained_encoder(tiny_model_config, legacy_meta)
    assert current.preprocess_config.window_stride == config.window_length
    assert legacy.preprocess_config.window_stride == config.window_stride
    side_by_side, overlapping = current.prepare(seq), legacy.prepare(seq)
    assert side_by_side.num_segments < overlapping.num_segments
    # window centres (phase * T, T from the first centre at L/2): one window length apart, except
    # the last window, which is aligned to the last frame
    length = config.window_length
    centres = side_by_side.phase * (length / 2 / side_by_side.phase[0])
    np.testing.assert_allclose(np.diff(centres)[:-1], length, rtol=1e-4)
    assert 0 < np.diff(centres)[-1] <= length


def test_an_encoder_with_motion_statistics_appends_them_to_the_models_embedding(
        tiny_model_config, make_toy_corpus, tmp_path):
    from encoder.checkpoint import save_checkpoint
    from encoder.data.motion_statistics import MotionStatisticsScaler
    from encoder.data.preprocess import preprocess_sequence

    def statistics(takes):   # as the encoder computes them: from its own preprocessing
        return np.stack([preprocess_sequence(s, plain.preprocess_config, with_statistics=True).statistics
                         for s in takes])

    seqs = make_toy_corpus(2, dims=2, seed=21)
    plain = _untrained_encoder(tiny_model_config, asdict(PreprocessConfig()))
    scaler = MotionStatisticsScaler.fit(statistics(make_toy_corpus(3, seed=5)), 0.5)
    meta = CheckpointMeta(**{**plain.meta.__dict__, "motion_statistics": scaler.to_dict()})
    with_stats = StyleEncoder(plain.model, meta)
    assert with_stats.model_dim == plain.dim and with_stats.dim == plain.dim + 4 * 17 * 2
    emb, logits = with_stats.embed_and_logits(seqs)
    plain_emb, plain_logits = plain.embed_and_logits(seqs)
    assert emb.shape == (len(seqs), with_stats.dim)
    np.testing.assert_allclose(emb[:, :plain.dim], plain_emb, atol=1e-6)      # the model's part, unchanged
    stats = statistics(seqs)
    expected = 0.5 * (stats - np.array(scaler.mean)) / np.array(scaler.scale) / np.sqrt(stats.shape[1])
    np.testing.assert_allclose(emb[:, plain.dim:], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(logits, plain_logits)
    np.testing.assert_allclose(with_stats.logits_from_embeddings(emb), plain_logits, atol=1e-5)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)             # as an inner-product index stores them
    np.testing.assert_allclose(with_stats.logits_from_embeddings(unit), plain_logits, atol=1e-5)
    assert with_stats.explain(seqs[0])["embedding"].shape == (with_stats.dim,)
    with pytest.raises(ValueError, match="carry no motion statistics"):
        with_stats.embed_prepared([plain.prepare(seqs[0])])
    alone = with_stats.without_statistics()                              # the learned part by itself
    assert alone.dim == plain.dim and with_stats.statistics == scaler
    np.testing.assert_allclose(alone.embed(seqs), plain_emb, atol=1e-6)
    assert with_stats.embed(seqs).shape[1] == with_stats.dim              # the original keeps them
    # the checkpoint keeps them; a checkpoint without them keeps the version it always had
    assert "motion_statistics" not in plain.meta.identity()
    saved = save_checkpoint(tmp_path / "stats.safetensors", plain.model, meta)
    assert saved.encoder_version != save_checkpoint(tmp_path / "plain.safetensors", plain.model,
                                                    plain.meta).encoder_version
    np.testing.assert_allclose(StyleEncoder.load(tmp_path / "stats.safetensors").embed(seqs), emb, atol=1e-6)


def test_a_checkpoint_from_before_statistics_came_from_preprocessing_still_computes_them_raw(
        tiny_model_config, make_toy_corpus):
    from encoder.data.motion_statistics import RAW, MotionStatisticsScaler, motion_statistics

    seqs = make_toy_corpus(2, dims=2, seed=22)
    plain = _untrained_encoder(tiny_model_config, asdict(PreprocessConfig()))
    fitted = MotionStatisticsScaler.fit(np.stack([motion_statistics(s) for s in make_toy_corpus(3, seed=5)]), 0.5)
    stored = {k: v for k, v in fitted.to_dict().items() if k != "inputs"}      # as session-20 checkpoints hold it
    old = StyleEncoder(plain.model, CheckpointMeta(**{**plain.meta.__dict__, "motion_statistics": stored}))
    assert old.statistics is not None and old.statistics.inputs == RAW
    raw = np.stack([motion_statistics(s) for s in seqs])
    expected = 0.5 * (raw - np.array(fitted.mean)) / np.array(fitted.scale) / np.sqrt(raw.shape[1])
    np.testing.assert_allclose(old.embed(seqs)[:, plain.dim:], expected, rtol=1e-5, atol=1e-6)


def test_bfloat16_precision_embeds_close_to_float32_and_an_unknown_precision_is_refused(make_toy_corpus):
    model = build_model("stgcn", {"num_classes": 3, "in_dims": 2})
    meta = CheckpointMeta(model_name="stgcn", model_config=config_to_dict(model.config),
                          preprocess_config=asdict(PreprocessConfig()), labels=("a", "b", "c"), input_dims=2)
    seqs = make_toy_corpus(3, dims=2, seed=5)
    exact = StyleEncoder(model, meta).embed(seqs)
    fast = StyleEncoder(model, meta, precision="bfloat16")
    emb = fast.embed(seqs)
    assert fast.precision == "bfloat16" and emb.dtype == np.float32 and emb.shape == exact.shape
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert not np.array_equal(emb, exact)                 # the products really ran in bfloat16
    assert (emb * exact).sum(axis=1).min() > 0.999        # and the embedding barely moved
    with pytest.raises(ValueError, match="unknown precision 'float16'"):
        StyleEncoder(model, meta, precision="float16")
