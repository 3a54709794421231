"""``posestyle index`` / ``posestyle reindex``: exit codes, summary table, one-line errors."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from retrieval.store import MetadataStore
from tests.retrieval.jobs_support import demo_sequences, single_torch_thread, tiny_checkpoint, write_dataset  # noqa: F401 (single_torch_thread: autouse fixture)

N_SEQUENCES = 12


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    tiny_checkpoint(tmp_path / "encoder.safetensors", seed=0)
    write_dataset(tmp_path / "dataset", demo_sequences(N_SEQUENCES), tmp_path / "raw")
    return {"checkpoint": tmp_path / "encoder.safetensors", "dataset": tmp_path / "dataset",
            "root": tmp_path / "index_data"}


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_index_then_reindex_prints_summaries_and_keeps_the_current_version(files):
    first = invoke("index", "-c", files["checkpoint"], "--data", files["dataset"], "--root", files["root"],
                   "--no-progress", "--batch-size", 5)
    assert first.exit_code == 0, first.output
    with MetadataStore.open(files["root"] / "metadata.db") as store:
        live = store.live_version()
        assert store.count_sequences() == N_SEQUENCES
    assert f"{N_SEQUENCES} new" in first.output
    assert "new live version" in first.output and live in first.output

    second = invoke("reindex", "-c", files["checkpoint"], "--root", files["root"], "--no-progress")
    assert second.exit_code == 0, second.output
    assert "unchanged" in second.output and live in second.output


@pytest.mark.parametrize("args, message", [
    (("--backend", "spark"), "'spark' is not one of 'local', 'ray'"),
    (("--index-type", "LSH"), "Invalid value for '--index-type': 'LSH' is not one of"),
    (("--ray-address", "auto"), "--ray-address needs --backend ray"),
])
def test_bad_options_exit_2_with_one_line(files, args, message):
    result = invoke("reindex", "-c", files["checkpoint"], "--root", files["root"], *args)
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and message in result.output


def test_missing_checkpoint_and_non_dataset_are_usage_errors(files, tmp_path):
    missing = invoke("reindex", "-c", tmp_path / "nope.safetensors", "--root", files["root"])
    assert missing.exit_code == 2 and "checkpoint file not found" in missing.output
    not_dataset = invoke("index", "-c", files["checkpoint"], "--data", tmp_path, "--root", files["root"])
    assert not_dataset.exit_code == 2 and "not a dataset cache" in not_dataset.output


def test_reindex_of_an_empty_store_fails_with_exit_1(files):
    result = invoke("reindex", "-c", files["checkpoint"], "--root", files["root"], "--no-progress")
    assert result.exit_code == 1
    assert "no sequences" in result.output and "Traceback" not in result.output
