"""What every ``posestyle`` command shares: fast light help, documented exit codes, flags without
metavars, one-line unwrapped errors, choice enums in step with the library, readable tables."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from app.cli import cli
from app.cli.common import Backend, BenchSplit, IndexType, Person, Precision, Preset, View
from app.cli.search_commands import hits_table

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
COMMANDS = (["app"], ["ingest"], ["demo-corpus"], ["demo"], ["train"], ["evaluate"], ["reindex"], ["index"],
            ["search"], ["bench", "encoders"], ["bench", "retrieval"], ["bench", "demo"])
HEAVY = ("torch", "numpy", "sklearn", "faiss", "sqlalchemy", "rich", "streamlit", "encoder", "retrieval")


@pytest.mark.parametrize("command", [[], *COMMANDS], ids=lambda c: " ".join(c) or "posestyle")
def test_help_imports_nothing_heavy(command: list[str]) -> None:
    """``--help`` runs without torch, numpy, sklearn, rich or the project's libraries (that is what
    makes it fast: imports are what the 4.5 s of the old ``--help`` were)."""
    code = ("import sys\nfrom app.cli import cli\ntry:\n    cli([*sys.argv[1:], '--help'])\nexcept SystemExit:\n"
            f"    pass\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))")
    out = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, cwd=REPO,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


@pytest.mark.parametrize("command", [[], *COMMANDS], ids=lambda c: " ".join(c) or "posestyle")
def test_help_documents_exit_codes_and_shows_flags_as_flags(command: list[str]) -> None:
    result = runner.invoke(cli, [*command, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Exit codes: 0 success; 1 the work failed" in text and "2 usage error" in text
    assert "<bool>" not in result.output and "<list[str]>" not in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80


def test_usage_errors_are_one_unwrapped_line_with_exit_2(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 6)
    deep.parent.mkdir(parents=True)
    deep.write_text("x")
    result = runner.invoke(cli, ["app", "--root", str(deep)], terminal_width=40)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error: {deep}: --root must be a folder"]
    for args in (["searh"], ["search", "--id", "x", "--no-such-option"], ["reindex", "-c", "x", "--backend", "spark"]):
        result = runner.invoke(cli, args, terminal_width=40)
        assert result.exit_code == 2, args
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "--help" in lines[0], lines


def test_choice_enums_match_the_library() -> None:
    from benchmarks.encoder_bench import SPLITS, VIEWS
    from encoder.data.labels import PRESETS
    from encoder.data.readers.keypoint_json import PERSON_SELECTIONS
    from encoder.inference import PRECISIONS
    from retrieval.jobs import BACKENDS, DEFAULT_BATCH_SIZE, INDEX_TYPES
    from retrieval.jobs.reindex import DEFAULT_STALE_AFTER_S

    assert tuple(b.value for b in Backend) == BACKENDS
    assert tuple(t.value for t in IndexType) == INDEX_TYPES
    assert tuple(p.value for p in Preset) == PRESETS
    assert tuple(p.value for p in Person) == PERSON_SELECTIONS
    assert tuple(v.value for v in View) == VIEWS
    assert tuple(s.value for s in BenchSplit) == SPLITS
    assert tuple(p.value for p in Precision) == PRECISIONS
    index_help = " ".join(runner.invoke(cli, ["index", "--help"]).output.split())
    assert f"default {DEFAULT_BATCH_SIZE}." in index_help and f"default {DEFAULT_STALE_AFTER_S:g}." in index_help


def test_hits_table_keeps_ids_and_labels_whole_at_80_columns(small_index) -> None:
    from app.services.analysis import AppService

    with AppService(small_index.root) as service:
        hits = service.open_live().search.search_by_id(small_index.sequence_ids[0], 5)
    long_id = "demo-integrated_variation-00004-with-a-long-suffix"
    hits[0] = replace(hits[0], sequence_id=long_id, metadata={
        **hits[0].metadata, "label": "integrated_variation", "collection": "Hollis & Crane",
        "tags": ["runway", "indoor", "heels"]})
    console = Console(width=80, record=True)
    console.print(hits_table("closest", hits))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert long_id in text and "integrated_variation" in text
    assert all(hit.sequence_id in text for hit in hits)


def test_empty_result_says_so(small_index) -> None:
    query = small_index.sequence_ids[0]
    result = runner.invoke(cli, ["search", "--id", query, "--label", "no_such_label", "--root", str(small_index.root)])
    assert result.exit_code == 0
    assert "no hits (no indexed sequence matches label no_such_label)" in result.stderr
    assert result.stdout.strip() == ""
    as_json = runner.invoke(cli, ["search", "--id", query, "--label", "no_such_label", "--json",
                                  "--root", str(small_index.root)])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == [[]]
