"""App service layer: what the Streamlit pages and the search commands need from ``retrieval/`` and
``encoder/`` (``analysis.AppService``), with no UI code. Import the submodule; nothing is re-exported here."""
