"""``fit`` adds a model's own loss terms (``StyleModel.extra_losses``) and reports them per epoch."""
from __future__ import annotations

TINY_GAITMM = {"map_height": 16, "map_width": 12, "channels": [4, 4, 8], "parts": 2, "embedding_dim": 8,
               "dropout": 0.0}


def test_fit_trains_with_the_models_own_terms(make_toy_corpus, make_train_config):
    from encoder.training import fit

    train, val = make_toy_corpus(3, dims=2, seed=1), make_toy_corpus(1, dims=2, seed=2)
    result = fit(train, val, make_train_config(model="gaitmm", model_config=TINY_GAITMM, epochs=2))
    for record in result.history:
        assert {"train_triplet", "train_part_ce", "train_ce"} <= set(record)
        assert record["train_part_ce"] > 0
    assert result.checkpoint.model_name == "gaitmm"
