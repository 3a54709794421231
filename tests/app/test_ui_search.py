"""Search page under AppTest: search by an indexed sequence or an upload, filters, and the error paths
(no index, unsupported type, broken file, oversize file) - none of which may show a traceback."""
from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from app.services.analysis import MAX_UPLOAD_BYTES, UPLOAD_SUFFIXES, AppService


def assert_no_traceback(at) -> None:
    """Nothing on screen is an exception (page bodies turn failures into one-line errors)."""
    assert not at.exception, [e.value for e in at.exception]


def _searched(app_test, root: Path, query_id: str, **filters: list[str]):
    at = app_test(root)
    at.run()
    assert_no_traceback(at)
    at.selectbox(key="query-id").set_value(query_id)
    for name, values in filters.items():
        at.multiselect(key=f"filter-{name}").set_value(values)
    at.button(key="search-button").click().run()
    assert_no_traceback(at)
    return at


def _card_titles(at) -> list[str]:
    """The title of each hit card, ``**#<rank> <sequence id>**``, in page order."""
    return [m.value for m in at.markdown if re.fullmatch(r"\*\*#\d+ \S+\*\*", m.value)]


def test_search_by_indexed_sequence_shows_the_service_hits_as_cards(app_test, small_index) -> None:
    query = small_index.sequence_ids[4]
    at = _searched(app_test, small_index.root, query)
    service = AppService(small_index.root)
    live = service.open_live()
    expected = service.search_by_id(live, query, at.slider(key="k").value, None)
    assert len(expected) == at.slider(key="k").value
    assert _card_titles(at) == [f"**#{h.rank} {h.sequence_id}**" for h in expected]
    assert query not in " ".join(_card_titles(at))
    assert len(at.get("image")) == len(expected)              # one animated stick figure per card
    assert not at.error
    # comparison and explanations for the first hit: trajectories + segment and region bars, query and hit
    assert at.selectbox(key="compare-select").value == expected[0].sequence_id
    assert len(at.get("plotly_chart")) == 5
    service.close()


def test_filters_restrict_the_hits(app_test, small_index) -> None:
    query = small_index.sequence_ids[0]
    style = small_index.labels[small_index.sequence_ids[7]]
    at = _searched(app_test, small_index.root, query, label=[style])
    titles = _card_titles(at)
    wanted = {s for s, label in small_index.labels.items() if label == style} - {query}
    assert titles and {t.split(" ", 1)[1].rstrip("*") for t in titles} == wanted


def test_compare_button_selects_that_hit(app_test, small_index) -> None:
    at = _searched(app_test, small_index.root, small_index.sequence_ids[2])
    third = _card_titles(at)[2].split(" ", 1)[1].rstrip("*")
    at.button(key="compare-3").click().run()
    assert_no_traceback(at)
    assert at.selectbox(key="compare-select").value == third


def _npz_bytes(path: Path) -> bytes:
    return path.read_bytes()


def _upload(app_test, root: Path, name: str, data: bytes):
    at = app_test(root)
    at.run()
    at.radio(key="query-source").set_value("Upload a pose file").run()
    at.file_uploader(key="query-upload").set_value((name, data, "application/octet-stream"))
    at.run()
    at.button(key="search-button").click().run()
    assert_no_traceback(at)
    return at


def test_upload_of_a_pose_file_searches_with_it(app_test, small_index) -> None:
    source = small_index.sequence_ids[5]
    at = _upload(app_test, small_index.root, f"../../{source}.npz", _npz_bytes(small_index.raw_dir / f"{source}.npz"))
    assert not at.error, [e.value for e in at.error]
    titles = _card_titles(at)
    assert titles and titles[0] == f"**#1 {source}**"      # the same motion is its own nearest neighbour
    assert any(f"closest in style to {source}.npz" in s.value for s in at.subheader)


@pytest.mark.parametrize("name, data, problem", [
    ("walk.npz", b"this is not a numpy archive", "walk.npz: "),
    ("walk.bvh", b"HIERARCHY\nROOT Hips\n{\n", "walk.bvh: "),
    ("walk.json", b"{\"annotations\": [", "walk.json: "),
])
def test_bad_uploads_show_one_line_errors(app_test, small_index, name: str, data: bytes, problem: str) -> None:
    at = _upload(app_test, small_index.root, name, data)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and problem in errors[0] and "\n" not in errors[0], errors
    assert not _card_titles(at)


def test_uploader_offers_only_pose_file_types(app_test, small_index) -> None:
    """The browser's file picker is restricted up front; another extension is refused before Search."""
    at = app_test(small_index.root)
    at.run()
    at.radio(key="query-source").set_value("Upload a pose file").run()
    uploader = at.file_uploader(key="query-upload")
    offered = set(uploader.proto.type)
    assert set(UPLOAD_SUFFIXES) <= offered and offered - set(UPLOAD_SUFFIXES) <= {".mpeg4"}   # alias of .mp4
    uploader.set_value(("notes.txt", b"hello", "text/plain")).run()   # what the browser's picker prevents
    assert any("Invalid file extension: `.txt`" in e.value for e in at.exception)


def test_rejected_upload_logs_one_line_without_traceback(app_test, small_index, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="posestyle.app"):
        at = _upload(app_test, small_index.root, "walk.npz", b"this is not a numpy archive")
    assert len(at.error) == 1
    records = [r for r in caplog.records if r.name == "posestyle.app"]
    assert records and all(r.exc_info is None for r in records), [r.getMessage() for r in records]
    assert all("\n" not in r.getMessage() for r in records)


def test_compare_button_asks_the_browser_to_scroll_to_the_comparison(app_test, small_index) -> None:
    at = _searched(app_test, small_index.root, small_index.sequence_ids[2])
    assert not [h for h in at.get("html") if "scrollIntoView" in h.proto.body]
    at.button(key="compare-4").click().run()
    assert_no_traceback(at)
    scripts = [h for h in at.get("html") if "scrollIntoView" in h.proto.body]
    assert len(scripts) == 1 and ".st-key-comparison" in scripts[0].proto.body
    at.run()                                   # an unrelated rerun does not scroll again
    assert not [h for h in at.get("html") if "scrollIntoView" in h.proto.body]


def test_oversize_upload_is_refused(app_test, small_index) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(MAX_UPLOAD_BYTES // 4 + 64, np.float32))
    at = _upload(app_test, small_index.root, "huge.npy", buffer.getvalue())
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "over the upload limit" in errors[0], errors


def test_search_without_a_query_asks_for_one(app_test, small_index) -> None:
    at = app_test(small_index.root)
    at.run()
    at.button(key="search-button").click().run()
    assert_no_traceback(at)
    assert [e.value for e in at.error] == ["Pick a sequence to search with."]


@pytest.mark.parametrize("page", ["views/search.py", "views/explore.py", "views/evaluate.py", "views/index.py"])
def test_every_page_without_an_index_says_how_to_build_one(app_test, tmp_path, page: str) -> None:
    at = app_test(tmp_path / "empty")
    at.run()
    at.switch_page(page).run()
    assert_no_traceback(at)
    assert not at.error
    assert any("No index yet" in i.value for i in at.info)
    assert any("posestyle index --data" in c.value for c in at.code)
    assert not (tmp_path / "empty").exists()               # looking does not create anything



@pytest.mark.slow
def test_without_its_encoder_the_index_still_searches_by_id(app_test, build_index, tmp_path) -> None:
    index = build_index(tmp_path / "own")
    index.checkpoint.unlink()
    at = _searched(app_test, index.root, index.sequence_ids[1])
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "Upload search and explanations are off" in warnings[0]
    assert "checkpoint file not found" in warnings[0]
    assert len(_card_titles(at)) == at.slider(key="k").value
    assert any("gives no explanation" in c.value for c in at.caption)
    source = index.sequence_ids[0]
    at = _upload(app_test, index.root, f"{source}.npz", _npz_bytes(index.raw_dir / f"{source}.npz"))
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "cannot embed uploads" in errors[0], errors
