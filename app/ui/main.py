"""Entry point of the app: ``streamlit run app/ui/main.py -- --root index_data [--store URL]``
(what ``posestyle app`` runs). Sets up the page and the navigation between the four pages."""
from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="PoseStyle", page_icon=":material/directions_walk:", layout="wide")

PAGES = [
    st.Page("views/search.py", title="Search", icon=":material/search:", url_path="search", default=True),
    st.Page("views/explore.py", title="Explore", icon=":material/scatter_plot:", url_path="explore"),
    st.Page("views/evaluate.py", title="Evaluate", icon=":material/analytics:", url_path="evaluate"),
    st.Page("views/index.py", title="Index", icon=":material/database:", url_path="index"),
]

st.navigation(PAGES).run()
