"""How torch's OpenMP threads wait for work, chosen before torch loads (the ``posestyle`` command
calls ``choose_omp_wait_policy`` first thing).

Measured on this 2-core virtual machine, training the demo encoder for 4 epochs with 2 torch threads:

- the machine to itself: 16 s when threads spin a while before sleeping (libgomp's default), 35 s
  when they sleep at once (``OMP_WAIT_POLICY=PASSIVE``: an idle virtual CPU wakes slowly);
- next to a second such job: 98 s spinning (each job's spinning threads take the cores the other
  needs), 25 s sleeping.

So threads spin on a quiet machine and sleep on a busy one, judged by the 1-minute load average
when the command starts. A policy the user set is kept.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping

# Busy: a 1-minute load average of at least this fraction of the cores.
BUSY_LOAD_PER_CORE = 0.75


def choose_omp_wait_policy(environ: MutableMapping[str, str] = os.environ, load: float | None = None,
                           cores: int | None = None) -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``environ`` when the machine is busy, unless it is set already;
    returns the policy in force (None: libgomp's default, spin then sleep). Call before torch loads."""
    if "OMP_WAIT_POLICY" in environ:
        return environ["OMP_WAIT_POLICY"]
    cores = cores or os.cpu_count() or 1
    load = os.getloadavg()[0] if load is None else load
    if load >= BUSY_LOAD_PER_CORE * cores:
        environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return "PASSIVE"
    return None
