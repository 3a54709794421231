"""Explore page: the 2D UMAP of the indexed style embeddings (computed once per index version),
coloured by style label, collection, season or k-means cluster; clicking a point searches with it."""
from __future__ import annotations

import streamlit as st

from app.ui import figures
from app.ui.state import (
    AUTO_SEARCH_KEY,
    SEARCH_PAGE,
    app_config,
    cluster_labels,
    embedding_map_rows,
    live_index,
    page_guard,
    select_query_from_map,
)

MAP_KEY = "explore-map"
COLOUR_CHOICES = {"label": "Style label", "collection": "Collection", "season": "Season", "cluster": "k-means cluster"}


def _on_pick() -> None:
    """A click on the map: hand the picked sequence to the Search page (switched to on the rerun)."""
    state = st.session_state.get(MAP_KEY)
    points = list(getattr(getattr(state, "selection", None), "points", None) or [])
    select_query_from_map(st.session_state, points)


def render() -> None:
    if st.session_state.get(AUTO_SEARCH_KEY):
        st.switch_page(SEARCH_PAGE)
    st.title("Explore the style space")
    live, live_key = live_index()
    config = app_config()
    rows = embedding_map_rows(config.root, config.store_url, live_key)
    if len(rows) < 3:
        st.info(f"Index version {live.version} holds {len(rows)} sequence(s); a map needs at least 3.")
        return
    colour_by = st.radio("Colour by", list(COLOUR_CHOICES), format_func=COLOUR_CHOICES.get, horizontal=True,
                         key="explore-colour")
    if colour_by == "cluster":
        styles = len({r["label"] for r in rows if r["label"] != "(unlabelled)"})
        upper = min(30, len(rows) - 1)
        k = st.number_input("k (number of clusters)", min_value=2, max_value=upper,
                            value=min(max(2, styles), upper), step=1, key="explore-k")
        clusters = cluster_labels(config.root, config.store_url, live_key, int(k))
        rows = [{**r, "cluster": f"cluster {clusters[r['id']]}"} for r in rows]
    st.plotly_chart(figures.embedding_scatter(rows, colour_by), key=MAP_KEY, on_select=_on_pick,
                    selection_mode="points")
    st.caption(f"{len(rows)} sequences of index version {live.version}, laid out by "
               f"{rows[0]['method'].upper()}. Hover for details; click a point to search with that sequence.")


with page_guard():
    render()
