"""``posestyle bench retrieval`` at tiny sizes: the whole bench runs and its report holds together.

Timings are recorded by the bench but never asserted here."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import cli
from benchmarks.retrieval_bench import (
    INDEX_TYPES,
    REPORT_JSON,
    REPORT_MD,
    REPORT_PNG,
    ClusteredSphereMixture,
    FittedMixture,
    make_untrained_checkpoint,
    quick_config,
    recall_at_k,
    run_retrieval_bench,
)
from retrieval.index.spec import openmp_threads
from tests.retrieval.jobs_support import one_torch_thread

pytestmark = pytest.mark.slow   # runs the whole quick retrieval bench once


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    """One quick bench run (local re-index backend only), on one thread: the machine is shared."""
    out = tmp_path_factory.mktemp("bench")
    other = make_untrained_checkpoint(tmp_path_factory.mktemp("other") / "other.safetensors", seed=1)
    with one_torch_thread(), openmp_threads(1):
        config = quick_config(reindex_also=(other,), reindex_precisions_also=("bfloat16",))
        report = run_retrieval_bench(config, out, progress=False)
    yield report, out


def test_report_files_are_written_and_match_the_returned_report(quick_run: tuple[dict[str, Any], Path]) -> None:
    report, out = quick_run
    assert json.loads((out / REPORT_JSON).read_text()) == json.loads(json.dumps(report, default=str))
    markdown = (out / REPORT_MD).read_text()
    for heading in ("## Machine", "## Targets", "## Vectors", "## Indexes", "## End to end", "## Re-index"):
        assert heading in markdown
    assert report["vectors"]["description"] in markdown
    assert (out / REPORT_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_index_type_is_measured_with_recall_in_range(quick_run: tuple[dict[str, Any], Path]) -> None:
    report, _ = quick_run
    sizes = quick_config().sizes
    assert sorted((r["size"], r["type"]) for r in report["indexes"]) == sorted(
        (n, t) for n in sizes for t in INDEX_TYPES)
    for row in report["indexes"]:
        assert 0.0 <= row["recall_at_10"] <= 1.0
        assert row["index_bytes"] > 0
        assert set(row["single_query"]) == {"service", "faiss_1_thread", "faiss_all_threads"}
        assert row["sweep"], row["type"]
        for point in row["sweep"]:
            assert 0.0 <= point["recall_at_10"] <= 1.0
            assert point["samples"] > 0
        best = row["best_meeting_target"]
        meeting = [p for p in row["sweep"] if p["recall_at_10"] >= report["config"]["recall_target"]]
        if meeting:
            assert best is not None and best["recall_at_10"] >= report["config"]["recall_target"]
            assert best["p50_ms"] == min(p["p50_ms"] for p in meeting)
        else:
            assert best is None


def test_flat_recall_is_exact(quick_run: tuple[dict[str, Any], Path]) -> None:
    report, _ = quick_run
    flat = [r for r in report["indexes"] if r["type"] == "Flat"]
    assert flat and all(r["recall_at_10"] == 1.0 for r in flat)


def test_end_to_end_answers_every_file_with_ranked_hits(quick_run: tuple[dict[str, Any], Path]) -> None:
    report, _ = quick_run
    e2e = report["end_to_end"]
    assert e2e["queries"] == quick_config().e2e_queries
    assert e2e["all_queries_got_k_hits_with_metadata"] is True
    assert [h["rank"] for h in e2e["example_hits"]] == [1, 2, 3]
    scores = [h["score"] for h in e2e["example_hits"]]
    assert scores == sorted(scores, reverse=True)
    stages = {"read", "preprocess", "embed", "search_and_join"}
    assert set(e2e["stages"]) == set(e2e["torch_1_thread"]["stages"]) == stages
    assert e2e["torch_1_thread"]["all_queries_got_k_hits_with_metadata"] is True


def test_reindex_embeds_every_walk_and_times_every_stage(quick_run: tuple[dict[str, Any], Path]) -> None:
    report, _ = quick_run
    (local,) = report["reindex"]["runs"]
    assert local["backend"] == "local" and local["workers"] * local["threads"] <= report["reindex"]["cores"]
    assert local["embedded"] == quick_config().reindex_walks and local["failed"] == 0
    assert {"read", "preprocess", "embed", "write_shards", "build", "verify", "promote"} <= set(local["stage_s"])
    # every run starts cold, as a real re-index of an archive does (where the OS can evict files)
    assert local["page_cache"] == ("corpus evicted before the run" if hasattr(os, "posix_fadvise") else "as found")
    bfloat16, other = report["reindex"]["other_runs"]
    (run,) = bfloat16["runs"]                    # --reindex-precisions-also: the same walks and encoder in bfloat16
    assert bfloat16["encoder_version"] == report["reindex"]["encoder_version"]
    assert (bfloat16["precision"], run["precision"], local["precision"]) == ("bfloat16", "bfloat16", "float32")
    assert run["embedded"] == local["embedded"] and run["backend"] == "local"
    (run,) = other["runs"]                       # --reindex-also: the same walks, another encoder
    assert other["encoder_version"] != report["reindex"]["encoder_version"]
    assert run["embedded"] == local["embedded"] and run["backend"] == "local"


def test_serving_and_sharded_parts_answer_with_hits_and_recall(quick_run: tuple[dict[str, Any], Path]) -> None:
    report, _ = quick_run
    serving, sharded = report["serving"], report["sharded"]
    assert serving["corpus"] == quick_config().serving_size and serving["all_queries_got_k_hits_with_metadata"]
    assert serving["rss_mib"]["after_queries"] > 0
    assert sharded["vectors"] == quick_config().sharded_size
    assert sharded["dim"] == report["encoder"]["dim"]          # the plan is tested at the encoder's width
    assert all(0.0 <= p["recall_at_10"] <= 1.0 for p in sharded["sweep"])


def test_targets_are_judged_and_marked_indicative_at_other_sizes(quick_run: tuple[dict[str, Any], Path]) -> None:
    report, _ = quick_run
    targets = report["targets"]
    assert len(targets) == 1 + len(INDEX_TYPES) + 5     # + re-index (three runs), serving latency and RSS
    assert sum("the index the product builds" in t["name"] for t in targets) == 1
    assert all(isinstance(t["met"], bool) and t["measured"] for t in targets)
    assert all("indicative" in t["note"] for t in targets[:1 + len(INDEX_TYPES)])
    assert not any(t["met"] for t in targets[1 + len(INDEX_TYPES):])   # quick sizes are below the targets' sizes


def test_recall_counts_the_overlap_of_the_top_k() -> None:
    truth = np.arange(20).reshape(2, 10)
    assert recall_at_k(truth, truth) == 1.0
    assert recall_at_k(truth + 100, truth) == 0.0
    half = truth.copy()
    half[:, 5:] += 100
    assert recall_at_k(half[:, ::-1], truth) == 0.5


def test_mixture_gives_unit_vectors_whose_neighbours_mostly_share_a_cluster() -> None:
    mixture = ClusteredSphereMixture(dim=32, groups=5, clusters_per_group=4, seed=3)
    a, b = mixture.sample(500, seed=1), mixture.sample(500, seed=2)
    assert a.shape == (500, 32) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, mixture.sample(500, seed=1))
    _, rows = faiss.knn(a[:50], a, 2, metric=faiss.METRIC_INNER_PRODUCT)
    neighbour_sim = (a[:50] * a[rows[:, 1]]).sum(axis=1).mean()
    random_sim = (a[:50] * a[250:300]).sum(axis=1).mean()
    assert neighbour_sim > random_sim + 0.3


def test_fitted_mixture_reproduces_the_class_means() -> None:
    rng = np.random.default_rng(0)
    means = np.eye(3, 8) * 5
    labels = [str(i % 3) for i in range(300)]
    embeddings = means[[int(label) for label in labels]] + rng.standard_normal((300, 8)) * 0.3
    mixture = FittedMixture.fit(embeddings, labels, rank=4)
    samples = mixture.sample(3000, seed=0)
    np.testing.assert_allclose(np.linalg.norm(samples, axis=1), 1.0, atol=1e-5)
    assert mixture.labels == ["0", "1", "2"] and mixture.dim == 8
    assert np.abs(samples.mean(axis=0)[:3] - 1 / 3).max() < 0.1


def test_cli_registers_bench_retrieval_and_refuses_tiny_sizes() -> None:
    runner = CliRunner()
    help_text = runner.invoke(cli, ["bench", "--help"]).output
    assert "retrieval" in help_text
    result = runner.invoke(cli, ["bench", "retrieval", "--sizes", "10"])
    assert result.exit_code == 2
    result = runner.invoke(cli, ["bench", "retrieval", "--backends", "gpu-cluster"])
    assert result.exit_code == 2


def test_a_partial_run_without_a_report_to_carry_over_fails_before_measuring(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", "retrieval", "--parts", "reindex", "--quick", "--out",
                                      str(tmp_path), "--no-progress"])
    assert result.exit_code == 2
    assert "no indexes or end_to_end part to carry over" in result.output
    assert not (tmp_path / REPORT_JSON).exists()
