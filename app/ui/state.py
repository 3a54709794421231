"""Shared plumbing of the app's pages: launch arguments, cached resources, the error guard, session keys.

The model and the live index are loaded once per live version (``st.cache_resource`` keyed by the
``LIVE`` pointer, so a promotion by a re-index is picked up on the next interaction); derived data
is cached with ``st.cache_data``. Every page body runs inside ``page_guard``: whatever goes wrong
is shown as one ``st.error`` line (the traceback goes to the server log), and a missing index shows
which command builds one.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from app.services.analysis import (
    AppService,
    ClusterQuality,
    LiveIndex,
    MotionView,
    NoIndexError,
    build_index_hint,
    motion_view,
)
from app.ui.figures import skeleton_gif
from encoder.data.errors import PoseDataError, one_line

log = logging.getLogger("posestyle.app")

DEFAULT_ROOT = "index_data"
# Session-state keys shared between pages (the Explore map hands a query to the Search page).
QUERY_ID_KEY = "search_query_id"          # id of the indexed sequence to search with
AUTO_SEARCH_KEY = "search_run_now"        # True: the Search page runs the query without a click
SEARCH_PAGE = "views/search.py"


@dataclass(frozen=True)
class AppConfig:
    """Where the app reads its data: the data root and the metadata store URL (None: the root's SQLite);
    ``read_only``: no re-index form (see ``app.services.server_paths``)."""

    root: str
    store_url: str | None
    read_only: bool = False


def parse_app_args(argv: list[str]) -> AppConfig:
    """``--root DIR``, ``--store URL`` and ``--read-only`` from the arguments after ``streamlit run main.py --``."""
    parser = argparse.ArgumentParser(prog="posestyle-app", add_help=False, allow_abbrev=False)
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--store", default=None)
    parser.add_argument("--read-only", action="store_true")
    known, _ = parser.parse_known_args(argv)
    return AppConfig(root=str(Path(known.root).expanduser().resolve()), store_url=known.store or None,
                     read_only=known.read_only)


def app_config() -> AppConfig:
    return parse_app_args(sys.argv[1:])


# -- resources ----------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def get_service(root: str, store_url: str | None) -> AppService:
    """One service (store connection) per data root for the whole server process."""
    return AppService(root, store_url)


@st.cache_resource(show_spinner="Loading the live index and its encoder...", max_entries=2)
def _load_live(root: str, store_url: str | None, live_key: str) -> LiveIndex:
    return get_service(root, store_url).open_live()


def service() -> AppService:
    config = app_config()
    return get_service(config.root, config.store_url)


def live_index() -> tuple[LiveIndex, str]:
    """The live index with its encoder, loaded once per live version, and its cache key (what the
    ``LIVE`` pointer names; pass it to the cached helpers below). ``NoIndexError`` when none."""
    config = app_config()
    svc = get_service(config.root, config.store_url)
    key = svc.live_pointer()
    if key is None:
        raise NoIndexError(config.root)
    return _load_live(config.root, config.store_url, key), key


# -- derived data (cached per index version) ------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=512)
def sequence_motion(root: str, store_url: str | None, sequence_id: str, content_hash: str) -> MotionView:
    """Display-ready motion of a stored sequence (``content_hash`` keys the cache to its content)."""
    return motion_view(get_service(root, store_url).load_sequence(sequence_id))


@st.cache_data(show_spinner=False, max_entries=512)
def sequence_gif(root: str, store_url: str | None, sequence_id: str, content_hash: str) -> bytes:
    """The animated stick figure of a stored sequence (drawn once per content)."""
    return skeleton_gif(sequence_motion(root, store_url, sequence_id, content_hash))


@st.cache_data(show_spinner=False, max_entries=256)
def sequence_explanation(root: str, store_url: str | None, live_key: str, sequence_id: str) -> dict[str, Any] | None:
    """``StyleEncoder.explain`` of a stored sequence under the live version's encoder."""
    svc = get_service(root, store_url)
    live = _load_live(root, store_url, live_key)
    return svc.explain(live, svc.load_sequence(sequence_id))


@st.cache_data(show_spinner="Laying out the embeddings (once per index version)...", max_entries=4)
def embedding_map_rows(root: str, store_url: str | None, live_key: str) -> list[dict[str, Any]]:
    """One row per indexed sequence: 2D map position and metadata."""
    svc = get_service(root, store_url)
    live = _load_live(root, store_url, live_key)
    layout = svc.embedding_map(live)
    records = svc.store.get_sequences(layout.sequence_ids)
    rows = []
    for sequence_id, (x, y) in zip(layout.sequence_ids, layout.coords):
        record = records.get(sequence_id)
        rows.append({"id": sequence_id, "x": float(x), "y": float(y), "method": layout.method,
                     "label": (record.label if record else None) or "(unlabelled)",
                     "collection": (record.collection if record else None) or "(none)",
                     "season": (record.season if record else None) or "(none)",
                     "model": (record.model_id if record else None) or "",
                     "tags": ", ".join(record.tags) if record else ""})
    return rows


@st.cache_data(show_spinner="Clustering...", max_entries=16)
def cluster_labels(root: str, store_url: str | None, live_key: str, k: int) -> dict[str, int]:
    svc = get_service(root, store_url)
    return svc.cluster_labels(_load_live(root, store_url, live_key), k)


@st.cache_data(show_spinner="Computing cluster quality and the style head's predictions...", max_entries=16)
def cluster_quality(root: str, store_url: str | None, live_key: str, k: int | None) -> ClusterQuality:
    svc = get_service(root, store_url)
    return svc.cluster_quality(_load_live(root, store_url, live_key), k)


@st.cache_data(show_spinner=False, max_entries=4)
def indexed_catalogue(root: str, store_url: str | None, live_key: str) -> dict[str, str | None]:
    """Style label of every sequence in the live index, by id (sorted), for the query picker."""
    svc = get_service(root, store_url)
    return {r.id: r.label for r in svc.indexed_sequences(_load_live(root, store_url, live_key))}


@st.cache_data(show_spinner=False, max_entries=4)
def filter_options(root: str, store_url: str | None, live_key: str) -> dict[str, list[str]]:
    return get_service(root, store_url).filter_options()


# -- cross-page hand-over -------------------------------------------------------------------------
def select_query_from_map(state: MutableMapping[str, Any], points: list[dict[str, Any]]) -> str | None:
    """A point picked on the Explore map becomes the Search page's query (and runs it); returns its id.

    A point carries its sequence id as the first ``customdata`` value; nothing happens without one."""
    for point in points:
        custom = point.get("customdata")
        if isinstance(custom, (list, tuple)) and custom and isinstance(custom[0], str):
            state[QUERY_ID_KEY] = custom[0]
            state[AUTO_SEARCH_KEY] = True
            return custom[0]
    return None


# -- error handling -------------------------------------------------------------------------------
def show_no_index(root: str) -> None:
    st.info(f"No index yet under `{root}`. Build one with:")
    st.code(build_index_hint(root).replace("  (or", "\n# or").rstrip(")"), language="bash")


@contextmanager
def page_guard() -> Iterator[None]:
    """Run a page body; a missing index shows how to build one, any other failure one ``st.error`` line.

    Streamlit's own control flow (rerun, stop, switch_page) derives from BaseException and passes."""
    try:
        yield
    except NoIndexError as err:
        show_no_index(err.root)
    except PoseDataError as err:     # bad user data: one line on screen and in the log, no traceback
        log.info("refused: %s", one_line(err))
        st.error(one_line(err))
    except Exception as err:  # noqa: BLE001 - nothing a user does may put a traceback on screen
        log.exception("page failed")
        st.error(one_line(err))
