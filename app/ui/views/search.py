"""Search page: query by an indexed sequence or an uploaded pose file, filter, and browse the hits as
cards with animated stick figures; compare the query with a hit (joint trajectories) and see which
windows and body regions the encoder's embedding rests on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from app.services.analysis import UPLOAD_SUFFIXES, motion_view, read_uploaded_pose
from app.services.limits import MAX_UPLOAD_MB
from app.ui import figures
from app.ui.state import (
    AUTO_SEARCH_KEY,
    QUERY_ID_KEY,
    app_config,
    filter_options,
    indexed_catalogue,
    live_index,
    page_guard,
    sequence_explanation,
    sequence_gif,
    sequence_motion,
    service,
)
from app.ui.video_panels import QueryVideo, query_video, show_hit_clip, show_query_video
from encoder.data.errors import one_line
from encoder.data.skeleton import COCO17_JOINTS
from retrieval.search import SearchHit

CARD_COLUMNS = 4
RESULTS_KEY = "search_results"
COMPARE_KEY = "compare-select"
SCROLL_KEY = "scroll-to-comparison"
COMPARISON_KEY = "comparison"
# Cards of a row as tall as the tallest (captions wrap differently), the Compare button at the bottom.
CARD_CSS = """<style>
div[data-testid="stHorizontalBlock"]:has([class*="st-key-hit-card-"]) { align-items: stretch; }
div[data-testid="stColumn"]:has([class*="st-key-hit-card-"]) div:has([class*="st-key-hit-card-"]) { height: 100%; }
div[data-testid="stColumn"]:has([class*="st-key-hit-card-"]) > div { height: 100%; }
div[class*="st-key-hit-card-"] { height: 100%; }
div[class*="st-key-hit-card-"] > div:last-child { margin-top: auto; }
</style>"""
# Bring the comparison into view after "Compare with query" (retries while the page is still drawing).
SCROLL_JS = """<script>
(function (tries) {
  const go = () => {
    const el = document.querySelector(".st-key-%s");
    if (el) { el.scrollIntoView({block: "start"}); } else if (tries-- > 0) { setTimeout(go, 100); }
  };
  setTimeout(go, 50);
})(200);
</script>""" % COMPARISON_KEY
SOURCE_INDEXED, SOURCE_UPLOAD = "An indexed sequence", "Upload a pose file"


@dataclass
class SearchResult:
    """The last search: what was asked and what came back (kept in session state across reruns)."""

    query_name: str
    query_motion: Any             # MotionView
    query_explanation: dict[str, Any] | None
    hits: list[SearchHit]
    live_key: str
    query_video: QueryVideo | None = None    # the uploaded clip, when the query was a video


def _run_search(live: Any, live_key: str, source: str, query_id: str | None, upload: Any, k: int,
                filters: Any) -> SearchResult | None:
    svc = service()
    config = app_config()
    if source == SOURCE_INDEXED:
        if not query_id:
            st.error("Pick a sequence to search with.")
            return None
        hits = svc.search_by_id(live, query_id, k, filters)
        record = svc.store.get_sequence(query_id)
        motion = sequence_motion(config.root, config.store_url, query_id, record.content_hash if record else "")
        explanation = sequence_explanation(config.root, config.store_url, live_key, query_id)
        return SearchResult(query_id, motion, explanation, hits, live_key)
    if upload is None:
        st.error(f"Choose a file to upload ({', '.join(UPLOAD_SUFFIXES)}).")
        return None
    # A bad file raises PoseDataError: page_guard shows its one line (and logs it without a traceback).
    query = read_uploaded_pose(upload.name, upload.getvalue())[0]   # keypoint JSON, video: the main person
    hits = svc.search_by_sequence(live, query, k, filters)
    explanation = svc.explain(live, query)
    return SearchResult(query.source.removeprefix("upload:"), motion_view(query), explanation, hits, live_key,
                        query_video(upload.name, upload.getvalue(), query))


def _hit_card(hit: SearchHit, root: str, store_url: str | None) -> None:
    meta = hit.metadata
    with st.container(border=True, key=f"hit-card-{hit.rank}"):
        try:
            st.image(sequence_gif(root, store_url, hit.sequence_id, str(meta.get("content_hash", ""))),
                     width="stretch")
        except Exception as err:  # noqa: BLE001 - one unreadable hit must not hide the others
            st.warning(f"cannot draw: {one_line(err)}")
        show_hit_clip(meta)
        st.markdown(f"**#{hit.rank} {hit.sequence_id}**")
        st.markdown(f"similarity **{hit.score:.3f}**")
        st.caption(" | ".join(str(x) for x in (
            f"style: {meta.get('label') or '-'}", meta.get("collection") or "-", meta.get("season") or "-")))
        if meta.get("tags"):
            st.caption("tags: " + ", ".join(meta["tags"]))
        st.button("Compare with query", key=f"compare-{hit.rank}", width="stretch", on_click=_choose_hit,
                  args=(hit.sequence_id,))


def _choose_hit(sequence_id: str) -> None:
    st.session_state[COMPARE_KEY] = sequence_id
    st.session_state[SCROLL_KEY] = True


def _explanation_panel(explanation: dict[str, Any] | None, title: str, key: str) -> None:
    if not explanation:
        st.caption(f"{title}: the encoder gives no explanation.")
        return
    st.markdown(f"**{title}**: predicted style *{explanation['label']}* "
                f"({explanation['probabilities'][explanation['label']]:.0%})")
    if explanation.get("segment_weights") is not None:
        st.plotly_chart(figures.segment_weight_figure(explanation["phases"], explanation["segment_weights"],
                                                      "windows that weighed most"), key=f"{key}-segments")
    if explanation.get("region_weights"):
        st.plotly_chart(figures.region_weight_figure(explanation["region_weights"], "body regions that weighed most"),
                        key=f"{key}-regions")


def _comparison(result: SearchResult, root: str, store_url: str | None) -> None:
    ids = [h.sequence_id for h in result.hits]
    if st.session_state.get(COMPARE_KEY) not in ids:
        st.session_state[COMPARE_KEY] = ids[0]
    hit_id = st.selectbox("Hit to compare", ids, key=COMPARE_KEY)
    hit = next(h for h in result.hits if h.sequence_id == hit_id)
    hit_motion = sequence_motion(root, store_url, hit_id, str(hit.metadata.get("content_hash", "")))
    left, right = st.columns([3, 1])
    with right:
        joints = st.multiselect("Joints", COCO17_JOINTS, default=list(figures.TRAJECTORY_JOINTS),
                                key="compare-joints", format_func=lambda j: j.replace("_", " "))
        axes = [a for a in result.query_motion.axes if a in hit_motion.axes] or list(result.query_motion.axes)
        axis = st.selectbox("Coordinate", axes, index=axes.index("vertical") if "vertical" in axes else 0,
                            key="compare-axis")
    with left:
        if joints:
            st.plotly_chart(figures.trajectory_figure(result.query_motion, hit_motion, joints, axis,
                                                      f"query: {result.query_name}", f"#{hit.rank}: {hit_id}"),
                            key="compare-trajectories")
        else:
            st.caption("Pick at least one joint.")
    query_col, hit_col = st.columns(2)
    config = app_config()
    with query_col:
        _explanation_panel(result.query_explanation, "Query", "explain-query")
    with hit_col:
        _explanation_panel(sequence_explanation(config.root, config.store_url, result.live_key, hit_id),
                           f"#{hit.rank} {hit_id}", "explain-hit")


def render() -> None:
    st.title("Search by style")
    live, live_key = live_index()
    config = app_config()
    svc = service()
    if live.fallback_reason:
        st.warning(f"The live index cannot be served ({live.fallback_reason}); showing version {live.version}.")
    if live.encoder is None:
        st.warning(f"Upload search and explanations are off: {live.encoder_problem}")
    labels = indexed_catalogue(config.root, config.store_url, live_key)
    ids = list(labels)

    if st.session_state.get(QUERY_ID_KEY) in labels:           # handed over by the Explore map
        st.session_state["query-source"] = SOURCE_INDEXED
    source = st.radio("Query", [SOURCE_INDEXED, SOURCE_UPLOAD], horizontal=True, key="query-source")
    query_id, upload = None, None
    if source == SOURCE_INDEXED:
        wanted = st.session_state.get(QUERY_ID_KEY)
        if wanted in ids:
            st.session_state["query-id"] = wanted
        elif st.session_state.get("query-id") not in ids:
            st.session_state["query-id"] = None
        query_id = st.selectbox("Indexed sequence", ids, key="query-id", placeholder="Choose a sequence",
                                format_func=lambda s: f"{s}  ({labels.get(s) or 'unlabelled'})")
    else:
        upload = st.file_uploader(f"Pose file: {', '.join(UPLOAD_SUFFIXES)} (up to {MAX_UPLOAD_MB} MB)",
                                  type=[suffix.lstrip(".") for suffix in UPLOAD_SUFFIXES],
                                  key="query-upload", max_upload_size=MAX_UPLOAD_MB)

    options = filter_options(config.root, config.store_url, live_key)
    with st.expander("Filters and number of results", expanded=False):
        c1, c2, c3, c4 = st.columns(4)
        label = c1.multiselect("Style label", options["label"], key="filter-label")
        collection = c2.multiselect("Collection", options["collection"], key="filter-collection")
        season = c3.multiselect("Season", options["season"], key="filter-season")
        tags = c4.multiselect("Tags (any of)", options["tags"], key="filter-tags")
        k = st.slider("Results (k)", min_value=1, max_value=min(50, max(1, len(ids))), value=min(8, max(1, len(ids))),
                      key="k")
    clicked = st.button("Search", type="primary", key="search-button")
    auto = bool(st.session_state.pop(AUTO_SEARCH_KEY, False)) and source == SOURCE_INDEXED
    st.session_state.pop(QUERY_ID_KEY, None)
    if clicked or auto:
        filters = svc.make_filters(label, collection, season, tags)
        st.session_state.pop(RESULTS_KEY, None)
        st.session_state.pop(COMPARE_KEY, None)
        result = _run_search(live, live_key, source, query_id, upload, int(k), filters)
        if result is not None:
            st.session_state[RESULTS_KEY] = result

    result: SearchResult | None = st.session_state.get(RESULTS_KEY)
    if result is None or result.live_key != live_key:
        st.caption(f"{len(ids)} sequences in index version {live.version}. Pick a query and press Search.")
        return
    if not result.hits:
        st.info(f"No sequence matches the filters for {result.query_name}.")
        return
    if result.query_video is not None:
        show_query_video(result.query_video)
    st.subheader(f"{len(result.hits)} closest in style to {result.query_name}")
    st.html(CARD_CSS)
    for start in range(0, len(result.hits), CARD_COLUMNS):
        for column, hit in zip(st.columns(CARD_COLUMNS), result.hits[start:start + CARD_COLUMNS]):
            with column:
                _hit_card(hit, config.root, config.store_url)
    st.divider()
    with st.container(key=COMPARISON_KEY):
        st.subheader("Query and hit side by side")
        _comparison(result, config.root, config.store_url)
    if st.session_state.pop(SCROLL_KEY, False):
        st.html(SCROLL_JS, unsafe_allow_javascript=True)


with page_guard():
    render()
