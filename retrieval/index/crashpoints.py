"""Failure injection for the crash-window tests: ``crash_point(name)`` kills this process with
SIGKILL when the environment variable ``POSESTYLE_CRASH_AT`` equals ``name``, and does nothing
otherwise (one dictionary lookup). The named points are the narrow windows of saving and
promoting an index version, listed in ``CRASH_POINTS``."""
from __future__ import annotations

import os
import signal

CRASH_ENV = "POSESTYLE_CRASH_AT"
CRASH_POINTS = (
    "save-temp-written",      # a version's files are in .tmp-<version>-<uuid>/, not yet renamed
    "pointer-temp-written",   # .tmp-LIVE-<uuid> is written, the promotion has not started
    "pointer-swapped",        # LIVE names the new version, the store transaction has not committed
)


def crash_point(name: str) -> None:
    """SIGKILL this process if ``POSESTYLE_CRASH_AT`` names this point (test-only failure injection)."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
