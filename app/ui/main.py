"""Entry point of the app: ``streamlit run app/ui/main.py -- --root index_data [--store URL]``
(what ``posestyle app`` runs). Sets up the page and the navigation between the four pages.

Streamlit serves its default page at ``/`` only (a default page's ``url_path`` is not served), so
the default is a hidden page that forwards to Search, and every page has a URL of its own:
``/search``, ``/explore``, ``/evaluate``, ``/index``."""
from __future__ import annotations

import streamlit as st

from app.ui.state import SEARCH_PAGE

st.set_page_config(page_title="PoseStyle", page_icon=":material/directions_walk:", layout="wide")


def _open_search() -> None:
    st.switch_page(SEARCH_PAGE)


PAGES = [
    st.Page(_open_search, title="PoseStyle", url_path="home", default=True, visibility="hidden"),
    st.Page(SEARCH_PAGE, title="Search", icon=":material/search:", url_path="search"),
    st.Page("views/explore.py", title="Explore", icon=":material/scatter_plot:", url_path="explore"),
    st.Page("views/evaluate.py", title="Evaluate", icon=":material/analytics:", url_path="evaluate"),
    st.Page("views/index.py", title="Index", icon=":material/database:", url_path="index"),
]

st.navigation(PAGES).run()
