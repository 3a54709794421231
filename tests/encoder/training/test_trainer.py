"""fit: learns the toy styles, is deterministic per seed, restores the best epoch, skips bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from encoder.data.errors import PoseDataError
from encoder.data.preprocess import preprocess_sequence
from encoder.inference import StyleEncoder
from encoder.training import PreparedCache, TrainConfig, crop_windows, fit, is_improvement, lr_factor, untrained
from tests.support.interrupted_training import count_trained_epochs, interrupt_training_at_epoch


def _state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow   # uses trained_toy: a 25-epoch training run
def test_short_run_learns_the_toy_styles(trained_toy, make_toy_corpus):
    history = trained_toy.history
    first, last = history[0]["train_loss"], min(h["train_loss"] for h in history[-3:])
    assert last < 0.5 * first
    assert max(h["train_accuracy"] for h in history) == pytest.approx(1.0)      # train mode, augmented
    train = make_toy_corpus(6, dims=2, seed=1)
    encoder = StyleEncoder(trained_toy.model, trained_toy.checkpoint)
    predicted, _ = encoder.predict(train)
    assert np.mean([p == s.label for p, s in zip(predicted, train)]) == pytest.approx(1.0)
    meta = trained_toy.checkpoint
    assert list(meta.labels) == sorted({s.label for s in train})
    assert meta.input_dims == 2 and meta.training["best_epoch"] == trained_toy.best_epoch
    assert meta.training["n_train"] == 18 and meta.training["n_val"] == 6
    assert not trained_toy.model.training


@pytest.mark.slow   # uses trained_toy: a 25-epoch training run
def test_best_epoch_weights_are_restored(trained_toy, make_toy_corpus):
    val = make_toy_corpus(2, dims=2, seed=2)
    best = trained_toy.history[trained_toy.best_epoch - 1]
    encoder = StyleEncoder(trained_toy.model, trained_toy.checkpoint)
    predicted, _ = encoder.predict(val)
    assert np.mean([p == s.label for p, s in zip(predicted, val)]) == pytest.approx(best["val_accuracy"])
    assert best["val_macro_f1"] == max(h["val_macro_f1"] for h in trained_toy.history)


def test_same_seed_same_model_other_seed_other_model(make_toy_corpus, make_train_config):
    train, val = make_toy_corpus(2, dims=2, seed=3), make_toy_corpus(1, dims=2, seed=4)
    cfg = make_train_config(epochs=2)
    a, b = fit(train, val, cfg), fit(train, val, cfg)
    c = fit(train, val, cfg.with_overrides({"seed": 1}))
    assert _state_equal(a.model, b.model)
    assert not _state_equal(a.model, c.model)
    assert a.history[-1]["train_loss"] == b.history[-1]["train_loss"]


@pytest.mark.parametrize("view, dims", [("2d", 2), ("3d", 3)])
def test_3d_sources_train_in_either_view(make_toy_corpus, make_train_config, view, dims):
    train, val = make_toy_corpus(2, dims=3, seed=5), make_toy_corpus(1, dims=3, seed=6)
    result = fit(train, val, make_train_config(epochs=1, view=view))
    assert result.checkpoint.input_dims == dims
    assert result.checkpoint.model_config["in_dims"] == dims


def test_untrained_is_the_architecture_fit_trains_with_the_checkpoint_meta_fit_writes(
        make_toy_corpus, make_train_config, tmp_path):
    train, val = make_toy_corpus(2, dims=3, seed=5), make_toy_corpus(1, dims=3, seed=6)
    cfg = make_train_config(epochs=1, view="3d", motion_statistics_weight=0.25)
    trained = fit(train, val, cfg)
    labels = trained.checkpoint.labels
    start = untrained(cfg, labels, [*train, *val], note="for its cost")
    for field in ("model_name", "model_config", "preprocess_config", "labels", "input_dims", "skeleton",
                  "motion_statistics"):
        assert getattr(start.checkpoint, field) == getattr(trained.checkpoint, field), field
    assert start.checkpoint.input_dims == 3 and start.checkpoint.motion_statistics
    assert start.checkpoint.training == {"note": "for its cost", "seed": cfg.seed}
    assert start.model.state_dict().keys() == trained.model.state_dict().keys() and not start.model.training
    assert _state_equal(start.model, untrained(cfg, labels).model)       # seeded as fit seeds it
    assert not _state_equal(start.model, untrained(cfg.with_overrides({"seed": 1}), labels).model)
    assert not _state_equal(start.model, trained.model)
    assert untrained(cfg, labels).checkpoint.motion_statistics == {}
    start.save(tmp_path / "untrained.safetensors")
    encoder = StyleEncoder.load(tmp_path / "untrained.safetensors")
    assert encoder.embed(val).shape == (len(val), trained.model.config.embedding_dim + len(encoder.statistics.mean))


def test_bad_sequence_is_skipped_not_fatal(make_toy_corpus, make_train_config):
    train, val = make_toy_corpus(2, dims=2, seed=7), make_toy_corpus(1, dims=2, seed=8)
    bad = train[0].with_(confidence=np.full_like(train[0].confidence, 0.05), name="bad_one", source="toy/bad_one")
    result = fit([bad, *train[1:]], val, make_train_config(epochs=1, augment={"enabled": False}))
    assert result.checkpoint.training["n_train"] == len(train) - 1
    assert any("toy/bad_one" in line for line in result.skipped)


def test_unlabelled_or_single_style_training_is_refused(make_toy_corpus, make_train_config):
    train = make_toy_corpus(1, dims=2)
    with pytest.raises(PoseDataError, match="labelled"):
        fit([train[0].with_(label=None), *train[1:]], [], make_train_config(epochs=1))
    with pytest.raises(PoseDataError, match="at least 2 styles"):
        fit([s.with_(label="one") for s in train], [], make_train_config(epochs=1))


def test_prepared_cache_reuses_and_bounds(make_toy_corpus, make_train_config):
    from encoder.training import PREPARED_CACHE

    train, val = make_toy_corpus(1, dims=2, seed=9), make_toy_corpus(1, dims=2, seed=10)
    cfg = make_train_config(epochs=1)
    fit(train, val, cfg)
    hits = PREPARED_CACHE.hits
    fit(train, val, cfg.with_overrides({"seed": 5}))          # another seed: same prepared inputs
    assert PREPARED_CACHE.hits >= hits + len(train) + len(val)
    small = PreparedCache(max_bytes=1)
    item = preprocess_sequence(train[0])
    small.put(("k",), [item], [])
    assert small.get(("k",)) is None and small.nbytes == 0


def test_schedule_and_early_stopping_rule():
    total, warm = 100, 10
    factors = [lr_factor(s, total, warm, 0.02) for s in range(total + 1)]
    assert factors[0] == pytest.approx(0.1) and factors[warm - 1] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[warm:], factors[warm + 1:]))
    assert factors[-1] == pytest.approx(0.02)
    cfg = TrainConfig()
    best = {"val_macro_f1": 0.9, "val_loss": 0.5}
    assert is_improvement({"val_macro_f1": 0.95, "val_loss": 0.9}, best, cfg)
    assert is_improvement({"val_macro_f1": 0.9, "val_loss": 0.4}, best, cfg)        # tie broken by loss
    assert not is_improvement({"val_macro_f1": 0.9, "val_loss": 0.6}, best, cfg)
    assert not is_improvement({"val_macro_f1": 0.8, "val_loss": 0.1}, best, cfg)
    by_loss = cfg.with_overrides({"early_stop_metric": "val_loss"})
    assert is_improvement({"val_macro_f1": 0.1, "val_loss": 0.4}, best, by_loss)


def test_crop_windows_keeps_a_contiguous_run(make_toy_corpus):
    item = preprocess_sequence(make_toy_corpus(1, dims=2, frames=150)[0])
    assert item.num_segments > 3
    cut = crop_windows(item, 3, np.random.default_rng(0))
    assert cut.num_segments == 3
    start = int(np.flatnonzero(np.isclose(item.phase, cut.phase[0]))[0])
    np.testing.assert_array_equal(cut.positions, item.positions[start:start + 3])
    assert crop_windows(item, 0, np.random.default_rng(0)) is item


def test_early_stopping_waits_for_min_epochs(make_toy_corpus, make_train_config):
    """A plateau before ``min_epochs`` does not end the run; after it, ``patience`` does."""
    train, val = make_toy_corpus(2, dims=2, seed=3), make_toy_corpus(1, dims=2, seed=4)
    waited = fit(train, val, make_train_config(epochs=6, patience=1, min_epochs=5, lr=1e-9))
    assert len(waited.history) >= 5
    eager = fit(train, val, make_train_config(epochs=6, patience=1, min_epochs=0, lr=1e-9))
    assert len(eager.history) < 5


def test_validation_starts_at_validate_from_and_always_scores_the_last_epoch(make_toy_corpus, make_train_config):
    """Epochs before ``validate_from`` are not scored and cannot be the best; the last epoch always is."""
    train, val = make_toy_corpus(2, dims=2, seed=3), make_toy_corpus(1, dims=2, seed=4)
    late = fit(train, val, make_train_config(epochs=4, validate_from=3))
    assert ["val_macro_f1" in r for r in late.history] == [False, False, True, True]
    assert late.best_epoch in (3, 4)
    beyond = fit(train, val, make_train_config(epochs=3, validate_from=10))
    assert ["val_macro_f1" in r for r in beyond.history] == [False, False, True] and beyond.best_epoch == 3


def test_training_with_motion_statistics_fits_their_scaling_on_the_training_takes(make_toy_corpus, make_train_config):
    from encoder.data.motion_statistics import PREPROCESSED, MotionStatisticsScaler
    from encoder.data.preprocess import preprocess_sequence

    train, val = make_toy_corpus(3, dims=2, seed=1), make_toy_corpus(1, dims=2, seed=2)
    cfg = make_train_config(epochs=1, motion_statistics_weight=0.25)
    result = fit(train, val, cfg)
    scaler = MotionStatisticsScaler.from_dict(result.checkpoint.motion_statistics)
    stats = np.stack([preprocess_sequence(s, cfg.preprocess, with_statistics=True).statistics  # 2D: the 2d view
                      for s in [*train, *val]])
    assert scaler.weight == 0.25 and scaler.inputs == PREPROCESSED and np.allclose(scaler.mean, stats.mean(axis=0))
    assert StyleEncoder(result.model, result.checkpoint).dim == result.model.config.embedding_dim + stats.shape[1]
    assert fit(train, val, make_train_config(epochs=1)).checkpoint.motion_statistics == {}
    with pytest.raises(ValueError, match="motion_statistics_weight"):
        make_train_config(motion_statistics_weight=-1.0)


def test_an_interrupted_run_resumes_to_the_model_of_an_uninterrupted_one(
        make_toy_corpus, make_train_config, tmp_path, monkeypatch):
    """Stopped after epoch 2 of 4 (the state saved each epoch), a second fit continues at epoch 3 and
    ends with the same weights and history as a run never stopped; a finished state trains nothing
    more, also on another device or thread count, and a state of another run is ignored."""
    train, val = make_toy_corpus(2, dims=2, seed=3), make_toy_corpus(1, dims=2, seed=4)
    cfg = make_train_config(epochs=4, patience=10)
    whole = fit(train, val, cfg)
    state = tmp_path / "run.resume.pt"
    interrupt_training_at_epoch(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        fit(train, val, cfg, resume_file=state)
    assert torch.load(state, weights_only=True)["history"][-1]["epoch"] == 2
    epochs_trained = count_trained_epochs(monkeypatch)
    resumed = fit(train, val, cfg, resume_file=state)
    assert resumed.checkpoint.training["resumed_after_epoch"] == 2 and len(epochs_trained) == 2
    assert _state_equal(resumed.model, whole.model)
    drop = ("seconds",)
    assert ([{k: v for k, v in h.items() if k not in drop} for h in resumed.history]
            == [{k: v for k, v in h.items() if k not in drop} for h in whole.history])
    again = fit(train, val, cfg, resume_file=state)          # finished: nothing is trained again
    assert again.checkpoint.training["resumed_after_epoch"] == 4 and _state_equal(again.model, whole.model)
    moved = fit(train, val, cfg.with_overrides({"device": "cpu", "num_threads": 1}), resume_file=state)
    assert moved.checkpoint.training["resumed_after_epoch"] == 4      # another device or thread count: same run
    other = fit(train, val, cfg.with_overrides({"seed": 1}), resume_file=state)   # another run: from scratch
    assert "resumed_after_epoch" not in other.checkpoint.training and len(other.history) == 4
