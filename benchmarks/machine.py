"""What a benchmark's timings depend on: the machine, its load, and this process's memory.

psutil reports memory and the current RSS. Two things it does not report are read from Linux
``/proc``: the CPU's model name, and the peak RSS since a reset (``VmHWM`` with ``clear_refs``),
which bounds the memory an index build needs.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

import psutil


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_gib() -> float:
    """Physical memory in GiB."""
    return round(psutil.virtual_memory().total / 2 ** 30, 1)


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages, or None where the system has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def rss_bytes() -> int:
    """Resident set size of this process."""
    return int(psutil.Process().memory_info().rss)


def reset_peak_rss() -> bool:
    """Reset the peak RSS (``VmHWM``) to the current RSS (Linux ``clear_refs`` 5); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak RSS of this process since the last ``reset_peak_rss`` (Linux ``VmHWM``; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0
