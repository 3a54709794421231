"""``posestyle search`` over the small live index: by id, by file, by vector, filters, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from app.cli import cli
from app.services.analysis import AppService

runner = CliRunner()


def _search(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["search", *args])
    return result.exit_code, result.output


def test_search_by_id_matches_the_search_service_and_excludes_the_query(small_index):
    query = small_index.sequence_ids[0]
    code, out = _search("--id", query, "-k", "5", "--root", str(small_index.root), "--json")
    assert code == 0, out
    (hits,) = json.loads(out)
    with AppService(small_index.root) as service:
        expected = service.open_live().search.search_by_id(query, 5)
    assert [h["sequence_id"] for h in hits] == [h.sequence_id for h in expected]
    assert query not in {h["sequence_id"] for h in hits}
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    assert all(h["metadata"]["label"] == small_index.labels[h["sequence_id"]] for h in hits)


def test_label_filter_returns_exactly_k_hits_of_that_label(small_index):
    query = small_index.sequence_ids[0]
    other = next(label for label in sorted(set(small_index.labels.values()))
                 if label != small_index.labels[query])
    code, out = _search("--id", query, "-k", "3", "--label", other, "--root", str(small_index.root), "--json")
    assert code == 0, out
    (hits,) = json.loads(out)
    assert len(hits) == 3 and {h["metadata"]["label"] for h in hits} == {other}


def test_search_by_file_finds_the_indexed_copy_of_that_walk_first(small_index):
    name = small_index.sequence_ids[3]
    code, out = _search("--file", str(small_index.raw_dir / f"{name}.npz"), "-k", "3",
                        "--root", str(small_index.root), "--json")
    assert code == 0, out
    (hits,) = json.loads(out)
    assert hits[0]["sequence_id"] == name
    assert hits[0]["score"] >= hits[1]["score"]


def test_search_by_vector_and_table_output(small_index, tmp_path: Path):
    with AppService(small_index.root) as service:
        live = service.open_live()
        vector = live.searcher.vectors([0])[0]
    path = tmp_path / "q.npy"
    np.save(path, vector)
    code, out = _search("--vector", str(path), "-k", "2", "--root", str(small_index.root))
    assert code == 0, out
    assert "closest to" in out and "rank" in out


def test_bad_queries_get_one_line_errors(small_index, tmp_path: Path):
    root = str(small_index.root)
    code, out = _search("--root", root)
    assert code == 2 and "exactly one query" in out
    code, out = _search("--id", "no-such-walk", "--root", root)
    assert code == 2 and "no-such-walk" in out and "Traceback" not in out
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, out = _search("--file", str(broken), "--root", root)
    assert code == 2 and "broken.json" in out and "Traceback" not in out
    code, out = _search("--id", "x", "--root", str(tmp_path / "empty"))
    assert code == 1 and "Traceback" not in out
