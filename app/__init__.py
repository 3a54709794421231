"""app: the top layer. ``app.services`` (what the pages and commands need from ``retrieval`` and
``encoder``, no UI code), ``app.ui`` (the Streamlit pages) and ``app.cli`` (the ``posestyle``
command); the UI and the CLI call the services and never each other. This ``__init__`` imports nothing.
"""
