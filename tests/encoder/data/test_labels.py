"""Label sources: filename pattern, CSV sidecar, presets, and their errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from encoder.data.errors import PoseDataError
from encoder.data.labels import BANDAI_NAMCO_PATTERN, CsvLabels, PatternLabels, preset_labels


def test_pattern_named_groups_become_metadata_and_label() -> None:
    labels = PatternLabels(r"dataset-2_(?P<content>[^_]+)_(?P<label>[^_]+)_\d+")
    info = labels.lookup("dataset-2_walk-turn-left_elderly_007", "/x/dataset-2_walk-turn-left_elderly_007.bvh")
    assert info is not None
    assert info.label == "elderly"
    assert info.metadata == {"content": "walk-turn-left", "label": "elderly"}


def test_pattern_falls_back_to_file_stem_and_misses_cleanly() -> None:
    labels = PatternLabels(r"^(?P<label>[a-z]+)-\d+$")
    assert labels.lookup("person0", "/data/strut-12.json").label == "strut"
    assert labels.lookup("person0", "/data/NoMatch.json") is None


@pytest.mark.parametrize("pattern, problem", [
    (r"(?P<label>[a-z", "invalid regular expression"),
    (r"walk_\d+", "no named group"),
    (r"(?P<style>[a-z]+)", "no (?P<label>...) group"),
])
def test_bad_patterns_are_refused_with_one_line(pattern: str, problem: str) -> None:
    with pytest.raises(PoseDataError) as err:
        PatternLabels(pattern)
    assert problem in str(err.value)
    assert "\n" not in str(err.value)


def test_bandai_preset_gives_style_label_and_content() -> None:
    labels = preset_labels("bandai-namco", [])
    info = labels.lookup("dataset-2_run_youthful_013", "dataset-2_run_youthful_013.bvh")
    assert info.label == "youthful"
    assert info.metadata == {"content": "run", "style": "youthful", "take": "013"}
    assert labels.describe()["pattern"] == BANDAI_NAMCO_PATTERN


def test_csv_labels_metadata_and_tags(tmp_path: Path) -> None:
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("name,label,tags,performer\n"
                        "walk_01,strut,runway; fast|confident,ana\n"
                        "walk_02.bvh,glide,,\n"
                        "walk_03,,slow,bo\n")
    labels = CsvLabels(csv_path)
    first = labels.lookup("walk_01", tmp_path / "walk_01.npz")
    assert first.label == "strut"
    assert first.metadata == {"tags": ["runway", "fast", "confident"], "performer": "ana"}
    # the CSV may name the file (with suffix) instead of the sequence
    assert labels.lookup("other", tmp_path / "walk_02.bvh").label == "glide"
    assert labels.lookup("other", tmp_path / "walk_02.bvh").metadata == {}
    assert labels.lookup("walk_03", tmp_path / "walk_03.npz").label is None
    assert labels.lookup("walk_99", tmp_path / "walk_99.npz") is None
    assert labels.describe()["rows"] == 3


def test_csv_header_case_and_bom_tolerated(tmp_path: Path) -> None:
    csv_path = tmp_path / "l.csv"
    csv_path.write_bytes("\ufeffName , Label\nw1,calm\n".encode("utf-8"))
    assert CsvLabels(csv_path).lookup("w1", "w1.npz").label == "calm"


@pytest.mark.parametrize("text, problem", [
    ("file,style\nw1,calm\n", "missing name, label (found: file, style)"),
    ("name,style\nw1,calm\n", "missing label"),
    ("", "empty"),
    ("name,label\nw1,calm,extra\n", "line 2: 3 cells"),
    ("name,label\nw1,calm\nw1,brisk\n", "line 3: 'w1' is listed twice"),
    ("name,label\n,calm\n", "line 2: empty name"),
])
def test_csv_without_needed_columns_or_malformed_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(text)
    with pytest.raises(PoseDataError) as err:
        CsvLabels(csv_path)
    assert str(err.value).startswith(str(csv_path))
    assert problem in str(err.value)


def test_csv_missing_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(PoseDataError, match="cannot read labels CSV"):
        CsvLabels(tmp_path / "absent.csv")


def test_demo_preset_finds_labels_csv_in_ingested_folder(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("name,label\ndemo_0000,swagger\n")
    labels = preset_labels("demo", [tmp_path])
    assert labels.lookup("demo_0000", tmp_path / "demo_0000.npz").label == "swagger"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(PoseDataError, match="no labels.csv"):
        preset_labels("demo", [elsewhere])


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(PoseDataError, match="unknown preset 'cmu'"):
        preset_labels("cmu", [])
