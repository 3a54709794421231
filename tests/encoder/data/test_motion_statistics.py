import numpy as np
import pytest

from encoder.data.motion_statistics import (
    PREPROCESSED,
    RAW,
    MotionStatisticsScaler,
    append_motion_statistics,
    motion_statistics,
)
from encoder.data.preprocess import PreprocessConfig, preprocess_sequence


def test_motion_statistics_are_per_joint_statistics(make_toy_corpus):
    seq = make_toy_corpus(1, dims=2, seed=0)[0]
    feats = motion_statistics(seq)
    assert feats.shape == (4 * 17 * 2,) and np.isfinite(feats).all()
    still = seq.with_(joints=np.repeat(seq.joints[:1], len(seq.joints), axis=0))
    frozen = motion_statistics(still)
    assert np.allclose(frozen[2 * 34:], 0.0)             # no motion: velocity statistics vanish
    assert not np.allclose(feats[2 * 34:], 0.0)


def test_missing_joints_do_not_enter_the_statistics(make_toy_corpus):
    seq = make_toy_corpus(1, dims=2, seed=1)[0]
    conf = seq.confidence.copy()
    conf[::2, 9] = 0.0                                   # left wrist missing in every other frame
    garbage = seq.joints.copy()
    garbage[::2, 9] = 1e6                                # whatever sits under a missing joint
    kept = motion_statistics(seq.with_(confidence=conf))
    with_garbage = motion_statistics(seq.with_(joints=garbage, confidence=conf))
    assert np.allclose(kept, with_garbage)


def test_appended_statistics_weigh_as_told():
    rng = np.random.default_rng(0)
    emb, stats = rng.normal(size=(5, 8)) * 7.0, rng.normal(size=(5, 16))
    out = append_motion_statistics(emb, stats, 0.5)
    assert out.shape == (5, 24)
    assert np.allclose(np.linalg.norm(out[:, :8], axis=1), 1.0)    # the learned part, unit length
    assert np.allclose(out[:, 8:], 0.5 * stats / 4.0)              # weight x statistics / sqrt(F)
    assert np.allclose(append_motion_statistics(emb, stats, 0.0)[:, 8:], 0.0)
    with pytest.raises(ValueError, match="must be"):
        append_motion_statistics(emb, stats[:4], 0.5)


def test_preprocessing_gives_the_same_statistics_from_its_own_arrays(make_toy_corpus):
    seq = make_toy_corpus(1, dims=2, seed=3)[0]              # 30 fps, every joint seen: nothing to fill
    item = preprocess_sequence(seq, PreprocessConfig(), with_statistics=True)
    np.testing.assert_allclose(item.statistics, motion_statistics(seq), rtol=1e-5, atol=1e-6)
    assert preprocess_sequence(seq, PreprocessConfig()).statistics is None      # only when asked
    conf = seq.confidence.copy()
    conf[10:13, 9] = 0.0                                     # a short gap: preprocessing fills it
    filled = preprocess_sequence(seq.with_(confidence=conf), PreprocessConfig(), with_statistics=True)
    assert np.isfinite(filled.statistics).all() and filled.statistics.shape == item.statistics.shape


def test_a_scaler_says_what_its_statistics_come_from():
    stats = np.random.default_rng(1).normal(size=(6, 4))
    scaler = MotionStatisticsScaler.fit(stats, 0.25)
    assert scaler.inputs == PREPROCESSED and MotionStatisticsScaler.from_dict(scaler.to_dict()) == scaler
    legacy = {k: v for k, v in scaler.to_dict().items() if k != "inputs"}
    assert MotionStatisticsScaler.from_dict(legacy).inputs == RAW
    with pytest.raises(ValueError, match="inputs"):
        MotionStatisticsScaler.from_dict({**scaler.to_dict(), "inputs": "pixels"})
