"""Skip (or, under CI, fail) a video test when the ``video`` extra or scikit-image is missing."""
from __future__ import annotations

import importlib.util
import os

import pytest


def require_video(*modules: str) -> None:
    """Skip the calling test unless ``modules`` import (default: PyAV, MediaPipe, scikit-image).

    CI installs the video extra (``make test``), so there a missing module is a failure."""
    missing = [m for m in (modules or ("av", "mediapipe", "skimage")) if importlib.util.find_spec(m) is None]
    if not missing:
        return
    reason = f"video test needs {', '.join(missing)} (pip install -e '.[dev,video]')"
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)
