import numpy as np
import pytest

from encoder.data.motion_statistics import append_motion_statistics, motion_statistics


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
