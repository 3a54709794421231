"""App service layer: what the Streamlit pages and the search commands need from ``retrieval/`` and
``encoder/`` (``analysis.AppService``; ``limits``: the upload limits, importable without the heavy stack),
with no UI code. Import the submodule; nothing is re-exported here."""
