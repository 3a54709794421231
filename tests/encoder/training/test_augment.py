"""Augmentations keep labels and shapes; mirroring twice is the identity; tempo changes length."""
from __future__ import annotations

import numpy as np
import pytest

from encoder.data.skeleton import JOINT_INDEX, MIRROR_PERMUTATION
from encoder.training import (
    AugmentConfig,
    change_tempo,
    make_variants,
    mirror_sequence,
    training_view,
    turn_along_arc,
)


@pytest.mark.parametrize("dims", [2, 3])
def test_mirror_twice_is_identity_and_swaps_sides(make_toy_corpus, dims):
    seq = make_toy_corpus(1, dims=dims)[0]
    seq = seq.with_(confidence=seq.confidence.copy())
    seq.confidence[3, 9] = 0.0                                   # a missing left wrist
    seq.joints[3, 9] = 0.0
    once = mirror_sequence(seq)
    twice = mirror_sequence(once)
    np.testing.assert_allclose(twice.joints, seq.joints, atol=1e-3)
    np.testing.assert_array_equal(twice.confidence, seq.confidence)
    assert once.label == seq.label and once.joints.shape == seq.joints.shape
    left, right = JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]
    assert MIRROR_PERMUTATION[left] == right
    # the mirrored right wrist is the original left wrist with x reflected; y (and z) unchanged
    np.testing.assert_allclose(once.joints[:, right, 1:], seq.joints[:, left, 1:], atol=1e-4)
    assert once.confidence[3, right] == 0.0 and np.all(once.joints[3, right] == 0.0)
    # the body centre stays where it was
    hips = [JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"]]
    assert once.joints[:, hips, 0].mean() == pytest.approx(seq.joints[:, hips, 0].mean(), abs=1e-3)


def test_tempo_changes_length_not_label(make_toy_corpus):
    seq = make_toy_corpus(1, dims=2)[0]
    fast = change_tempo(seq, 1.2)
    slow = change_tempo(seq, 0.8)
    assert fast.num_frames < seq.num_frames < slow.num_frames
    assert fast.num_frames == pytest.approx(seq.num_frames / 1.2, abs=1)
    assert fast.fps == seq.fps and fast.label == seq.label and fast.joints.shape[1:] == seq.joints.shape[1:]
    # frame k of the faster take is the original at time 1.2 k
    np.testing.assert_allclose(fast.joints[5], seq.joints[6], atol=1e-3)


@pytest.mark.parametrize("dims, view", [(2, "2d"), (3, "2d"), (3, "3d")])
def test_variants_keep_label_and_view(make_toy_corpus, dims, view):
    seq = make_toy_corpus(1, dims=dims)[0]
    cfg = AugmentConfig(variants=3, crop=False)
    variants = make_variants(seq, cfg, view)
    expected_dims = 2 if view == "2d" else 3
    assert len(variants) == 3
    for v in variants:
        assert v.label == seq.label and v.dims == expected_dims and v.num_joints == 17
        assert 0.75 * seq.num_frames <= v.num_frames <= 1.3 * seq.num_frames
    assert training_view(seq, view).dims == expected_dims
    # the copies depend on the augmentation seed and the name, not on anything else
    again = make_variants(seq, cfg, view)
    for a, b in zip(variants, again):
        np.testing.assert_array_equal(a.joints, b.joints)
    other = make_variants(seq, AugmentConfig(variants=3, seed=1, crop=False), view)
    assert not np.array_equal(other[0].joints, variants[0].joints)


def test_switches_turn_augmentations_off(make_toy_corpus):
    seq = make_toy_corpus(1, dims=2)[0]
    off = AugmentConfig(variants=2, tempo=False, mirror=False, jitter=False, joint_dropout=False)
    for v in make_variants(seq, off, "2d"):
        np.testing.assert_array_equal(v.joints, seq.joints)
    assert make_variants(seq, AugmentConfig(enabled=False), "2d") == []
    jitter_only = AugmentConfig(variants=1, tempo=False, mirror=False, joint_dropout=False)
    v = make_variants(seq, jitter_only, "2d")[0]
    assert v.joints.shape == seq.joints.shape and not np.array_equal(v.joints, seq.joints)
    assert np.array_equal(v.confidence, seq.confidence)


def test_turning_bends_the_path_into_an_arc_and_keeps_each_pose_rigid(make_toy_corpus):
    seq = make_toy_corpus(1, dims=3, frames=40)[0]
    turned = turn_along_arc(seq, 90.0)
    np.testing.assert_allclose(turned.joints[0], seq.joints[0], atol=1e-5)          # angle 0 at the start
    np.testing.assert_allclose(turned.joints[..., 1], seq.joints[..., 1])           # heights kept (Y up)
    hip, knee = JOINT_INDEX["left_hip"], JOINT_INDEX["left_knee"]
    for frames in (seq.joints, turned.joints):                                      # bones keep their length
        bone = np.linalg.norm(frames[:, hip] - frames[:, knee], axis=-1)
        np.testing.assert_allclose(bone, np.linalg.norm(seq.joints[:, hip] - seq.joints[:, knee], axis=-1),
                                   rtol=1e-4)

    def heading(frames: np.ndarray) -> np.ndarray:   # direction of the hip line in the ground plane
        across = frames[:, JOINT_INDEX["right_hip"]] - frames[:, hip]
        return np.degrees(np.arctan2(across[:, 2], across[:, 0]))
    turn = (heading(turned.joints) - heading(seq.joints) + 180.0) % 360.0 - 180.0
    assert turn[0] == pytest.approx(0.0, abs=1e-3) and abs(turn[-1]) == pytest.approx(90.0, abs=1e-3)
    assert np.all(np.diff(np.abs(turn)) >= -1e-6)                                   # growing with time
    with_turns = make_variants(seq, AugmentConfig(variants=3, turn=True, turn_prob=1.0), "3d")
    without = make_variants(seq, AugmentConfig(variants=3), "3d")
    assert not all(np.allclose(a.joints, b.joints) for a, b in zip(with_turns, without))


def test_2d_source_cannot_be_trained_in_3d(make_toy_corpus):
    from encoder.data.errors import PoseDataError

    seq = make_toy_corpus(1, dims=2)[0]
    with pytest.raises(PoseDataError, match="3d view needs 3D"):
        training_view(seq, "3d")


def test_crop_gives_clips_between_min_seconds_and_whole(make_toy_corpus):
    seq = make_toy_corpus(1, dims=2)[0]
    cfg = AugmentConfig(variants=40, crop_prob=1.0, crop_min_seconds=1.0, tempo=False, mirror=False,
                        jitter=False, joint_dropout=False)
    lengths = {v.num_frames for v in make_variants(seq, cfg, "2d")}
    assert min(lengths) >= int(seq.fps) and max(lengths) <= seq.num_frames
    assert len(lengths) > 5                                   # clips of many lengths, not one


def test_raised_cameras_in_the_training_views(make_toy_corpus):
    """The random training cameras reach the configured pitch range, above the benchmark's 15 degrees."""
    seq = make_toy_corpus(1, dims=3)[0]
    cfg = AugmentConfig(variants=30, pitch_range=(20.0, 50.0), crop=False)
    pitches = [v.metadata["camera"]["pitch_deg"] for v in make_variants(seq, cfg, "2d")]
    assert min(pitches) >= 20.0 and max(pitches) <= 50.0 and max(pitches) > 40.0
