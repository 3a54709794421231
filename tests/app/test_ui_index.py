"""Index page under AppTest: the versions table, starting a re-index from the page (in a background
thread) and following it in the jobs table, bootstrapping an empty data root, and bad input."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.ui.state import get_service
from retrieval.store import MetadataStore, default_database_url

JOB_WAIT_S = 180


def assert_no_traceback(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _index_page(app_test, root: Path):
    at = app_test(root)
    at.run()
    at.switch_page("views/index.py").run()
    assert_no_traceback(at)
    return at


def _start(at, checkpoint: str, dataset: str = "") -> None:
    at.text_input(key="reindex-checkpoint").set_value(checkpoint)
    at.text_input(key="reindex-dataset").set_value(dataset)
    at.button[0].click()      # the form's submit button
    at.run()
    assert_no_traceback(at)


def _wait_for_launches(root: Path) -> None:
    """Join the re-index threads the app started for ``root`` and fail on their errors."""
    for launch in get_service(str(root.resolve()), None).launches():
        launch.thread.join(JOB_WAIT_S)
        assert not launch.running, "re-index did not finish in time"
        assert launch.error is None, launch.error


def _versions(at):
    """The versions table (the page's first table)."""
    return at.dataframe[0].value


def _jobs(at):
    """The jobs table (the page's second table)."""
    assert len(at.dataframe) == 2
    return at.dataframe[1].value


def test_versions_table_marks_the_live_version(app_test, small_index) -> None:
    at = _index_page(app_test, small_index.root)
    with MetadataStore.open(default_database_url(small_index.root)) as store:
        live = store.live_version()
    table = _versions(at)
    assert table["version"].tolist() == [live]
    assert table["live"].tolist() == ["live"] and table["status"].tolist() == ["live"]
    assert table["count"].tolist() == [len(small_index.sequence_ids)]
    assert table["type"].tolist() == ["Flat"] and table["encoder"][0].startswith("posestyle_net ")
    jobs = _jobs(at)
    assert jobs["status"].tolist() == ["completed"]
    assert jobs["progress"].tolist() == [f"{len(small_index.sequence_ids)}/{len(small_index.sequence_ids)}"]
    assert at.text_input(key="reindex-checkpoint").value == str(small_index.checkpoint.resolve())


@pytest.mark.slow
def test_reindex_with_a_new_encoder_publishes_a_new_live_version(app_test, index_copy, make_checkpoint,
                                                                 tmp_path) -> None:
    checkpoint = index_copy / "models" / "other.safetensors"      # re-index paths lie under the root
    checkpoint.parent.mkdir()
    encoder_version = make_checkpoint(checkpoint, seed=1)
    at = _index_page(app_test, index_copy)
    before = _versions(at)["version"].tolist()
    _start(at, str(checkpoint))
    assert any("started" in s.value for s in at.success), [e.value for e in at.error]
    _wait_for_launches(index_copy)
    at.run()
    assert_no_traceback(at)
    table = _versions(at)
    assert len(table) == 2
    new = table[table["live"] == "live"]
    assert new["version"].tolist()[0] not in before and new["encoder"].tolist()[0].endswith(encoder_version)
    assert table[table["version"] == before[0]]["status"].tolist() == ["retired"]
    jobs = _jobs(at)
    assert jobs["status"].tolist() == ["completed", "completed"] and jobs["encoder"][0] == encoder_version
    assert any(f"live version {new['version'].tolist()[0]}" in c.value for c in at.caption)


def test_reindex_bootstraps_an_empty_root_from_a_dataset(app_test, small_index, tmp_path) -> None:
    import shutil

    root = tmp_path / "fresh"
    at = _index_page(app_test, root)
    assert any("No index yet" in i.value for i in at.info)
    shutil.copytree(small_index.dataset, root / "dataset")
    shutil.copy(small_index.checkpoint, root / "encoder.safetensors")
    _start(at, "encoder.safetensors", "dataset")                  # relative to the root
    _wait_for_launches(root)
    at.run()
    table = _versions(at)
    assert table["live"].tolist() == ["live"] and table["count"].tolist() == [len(small_index.sequence_ids)]
    at.switch_page("views/search.py").run()
    assert_no_traceback(at)
    assert sorted(at.selectbox(key="query-id").options) == sorted(
        f"{s}  ({small_index.labels[s]})" for s in small_index.sequence_ids)


def test_bad_reindex_input_is_one_line(app_test, small_index, tmp_path) -> None:
    at = _index_page(app_test, small_index.root)
    root = small_index.root.resolve()
    _start(at, str(root / "missing.safetensors"))
    assert [e.value for e in at.error] == [f"{root / 'missing.safetensors'}: checkpoint file not found"]
    _start(at, str(small_index.checkpoint), str(root / "no-dataset"))   # a registered encoder's checkpoint
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "not a dataset cache" in errors[0]
    _start(at, "")
    assert [e.value for e in at.error] == ["Give the encoder checkpoint to embed with."]


def test_reindex_paths_outside_the_root_are_refused(app_test, small_index, tmp_path) -> None:
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(small_index.checkpoint.read_bytes())
    link = tmp_path / "root-with-link"
    link.mkdir()
    (link / "escape").symlink_to(tmp_path)
    at = _index_page(app_test, small_index.root)
    root = small_index.root.resolve()
    for typed in (str(outside), "../outside.safetensors", "../../../etc/passwd"):
        _start(at, typed)
        assert [e.value for e in at.error] == [f"{typed}: the checkpoint must lie under the index root {root}"]
    _start(at, str(small_index.checkpoint), "/etc")
    assert [e.value for e in at.error] == [f"/etc: the dataset must lie under the index root {root}"]
    import pytest

    from app.services.server_paths import PathNotAllowedError, allowed_server_path

    with pytest.raises(PathNotAllowedError, match="must lie under"):
        allowed_server_path("escape/outside.safetensors", link, "checkpoint")     # a symlink out of the root
    assert not [launch for launch in get_service(str(root), None).launches()]


def test_read_only_app_has_no_reindex_form(app_test, small_index, monkeypatch) -> None:
    import sys

    at = app_test(small_index.root)
    monkeypatch.setattr(sys, "argv", [*sys.argv, "--read-only"])
    at.run()
    at.switch_page("views/index.py").run()
    assert_no_traceback(at)
    assert not at.text_input and not at.button
    assert any("read-only" in i.value for i in at.info)
    assert _versions(at)["live"].tolist() == ["live"]
