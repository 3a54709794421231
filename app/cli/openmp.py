"""How torch's OpenMP threads wait for work, chosen before torch loads (the ``posestyle`` command
calls ``choose_omp_wait_policy`` first thing).

Measured on this 2-core virtual machine, training the demo encoder for 4 epochs with 2 torch threads:

- the machine to itself: 16 s when threads spin a while before sleeping (libgomp's default), 35 s
  when they sleep at once (``OMP_WAIT_POLICY=PASSIVE``: an idle virtual CPU wakes slowly);
- next to a second such job: 98 s spinning (each job's spinning threads take the cores the other
  needs), 25 s sleeping.

So threads spin on a quiet machine and sleep on a busy one: busy when the command starts with a
1-minute load average of at least 0.75 per core and other tasks running right now (the average lags:
just after `make install` it is still high on an idle machine). A policy the user set is kept.
"""
from __future__ import annotations

import os
import statistics
import time
from collections.abc import MutableMapping

# Busy: a 1-minute load average of at least this fraction of the cores ...
BUSY_LOAD_PER_CORE = 0.75
# ... and at least one other task runnable, the median of a few looks at /proc/loadavg.
RUNNABLE_SAMPLES, RUNNABLE_GAP_S = 5, 0.01


def other_runnable_tasks() -> int | None:
    """Tasks runnable now besides this one (the median of a few samples); None where /proc/loadavg is missing."""
    counts = []
    for i in range(RUNNABLE_SAMPLES):
        try:
            with open("/proc/loadavg", encoding="ascii") as fh:
                running = fh.read().split()[3].split("/")[0]
        except (OSError, IndexError):
            return None
        counts.append(int(running) - 1)
        if i + 1 < RUNNABLE_SAMPLES:
            time.sleep(RUNNABLE_GAP_S)
    return max(0, int(statistics.median(counts)))


def choose_omp_wait_policy(environ: MutableMapping[str, str] = os.environ, load: float | None = None,
                           cores: int | None = None, others: int | None = None) -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``environ`` when the machine is busy, unless it is set already;
    returns the policy in force (None: libgomp's default, spin then sleep). Call before torch loads."""
    if "OMP_WAIT_POLICY" in environ:
        return environ["OMP_WAIT_POLICY"]
    cores = cores or os.cpu_count() or 1
    load = os.getloadavg()[0] if load is None else load
    if load < BUSY_LOAD_PER_CORE * cores:
        return None
    others = other_runnable_tasks() if others is None else others
    if others is not None and others < 1:
        return None
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "PASSIVE"
