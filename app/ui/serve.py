"""``python -m app.ui.serve run ...``: ``streamlit run ...`` with the service layer imported while the server starts.

Streamlit imports a page's modules when the first browser session runs it; torch, faiss, scikit-learn and
the store took about 3 s of the first Search page's 5 s. Imported here on a background thread, they are
ready (or nearly) by the time a browser connects; a page that needs them first simply waits for the import.
"""
from __future__ import annotations

import sys
import threading


def _preload() -> None:
    import app.services.analysis  # noqa: F401


def main() -> None:
    from streamlit.web.cli import main as streamlit_main

    threading.Thread(target=_preload, name="posestyle-preload", daemon=True).start()
    sys.exit(streamlit_main())


if __name__ == "__main__":
    main()
