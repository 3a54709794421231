"""Explore page under AppTest: the UMAP of the live index (stored once per version), colouring by
k-means cluster, and a point picked on the map becoming the Search page's query."""
from __future__ import annotations

import json

import numpy as np
import pytest

from app.ui.state import AUTO_SEARCH_KEY, QUERY_ID_KEY, select_query_from_map
from retrieval.index import IndexManager
from retrieval.store import MetadataStore, default_database_url


def assert_no_traceback(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _figure(at, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


@pytest.mark.slow
def test_map_is_computed_once_per_version_and_coloured_by_cluster(app_test, index_copy) -> None:
    with MetadataStore.open(default_database_url(index_copy)) as store:
        searcher = IndexManager(index_copy, store).open_live()
    cache = index_copy / "cache" / f"umap-{searcher.version}.npz"
    assert not cache.exists()
    at = app_test(index_copy)
    at.run()
    at.switch_page("views/explore.py").run()
    assert_no_traceback(at)
    assert not at.error, [e.value for e in at.error]
    assert cache.is_file() and not list(cache.parent.glob(".*.tmp"))
    with np.load(cache, allow_pickle=False) as stored:
        assert stored["ids"].tolist() == searcher.sequence_ids
        assert stored["coords"].shape == (searcher.count, 2) and str(stored["method"]) == "umap"
    figure = _figure(at)
    labels = {t["name"] for t in figure["data"]}
    with MetadataStore.open(default_database_url(index_copy)) as store:
        assert labels == set(store.distinct_values("label"))
    plotted = sorted(row[0] for t in figure["data"] for row in t["customdata"])
    assert plotted == sorted(searcher.sequence_ids)
    stamp = cache.stat().st_mtime_ns

    at.radio(key="explore-colour").set_value("cluster").run()
    at.number_input(key="explore-k").set_value(3).run()
    assert_no_traceback(at)
    figure = _figure(at)
    assert len(figure["data"]) == 3 and all(t["name"].startswith("cluster ") for t in figure["data"])
    assert cache.stat().st_mtime_ns == stamp                 # the stored layout was reused


def test_a_picked_point_becomes_the_search_query() -> None:
    state: dict = {}
    assert select_query_from_map(state, [{"x": 1.0, "y": 2.0}]) is None and not state
    picked = select_query_from_map(state, [{"x": 1.0, "customdata": ["demo-a", "style"]}])
    assert picked == "demo-a" and state == {QUERY_ID_KEY: "demo-a", AUTO_SEARCH_KEY: True}


def test_search_page_runs_a_query_handed_over_by_the_map(app_test, small_index) -> None:
    query = small_index.sequence_ids[6]
    at = app_test(small_index.root)
    at.run()
    at.radio(key="query-source").set_value("Upload a pose file").run()     # whatever the page showed before
    at.session_state[QUERY_ID_KEY] = query
    at.session_state[AUTO_SEARCH_KEY] = True
    at.run()
    assert_no_traceback(at)
    assert at.radio(key="query-source").value == "An indexed sequence"
    assert at.selectbox(key="query-id").value == query
    assert any(f"closest in style to {query}" in s.value for s in at.subheader)
    assert AUTO_SEARCH_KEY not in at.session_state          # handled once, not on every rerun


def test_explore_page_switches_to_search_after_a_pick(app_test, small_index) -> None:
    query = small_index.sequence_ids[8]
    at = app_test(small_index.root)
    at.run()
    at.switch_page("views/explore.py")
    at.session_state[QUERY_ID_KEY] = query           # what the map's selection callback leaves behind
    at.session_state[AUTO_SEARCH_KEY] = True
    at.run()
    assert_no_traceback(at)
    assert [t.value for t in at.title] == ["Search by style"]
    assert any(f"closest in style to {query}" in s.value for s in at.subheader)
