"""The OpenMP wait policy: sleep on a busy machine, libgomp's default on a quiet one, the user's if set."""
from __future__ import annotations

from app.cli.openmp import choose_omp_wait_policy, other_runnable_tasks


def test_busy_machine_gets_sleeping_threads_quiet_one_the_default() -> None:
    busy: dict[str, str] = {}
    assert choose_omp_wait_policy(busy, load=1.5, cores=2, others=2) == "PASSIVE"
    assert busy == {"OMP_WAIT_POLICY": "PASSIVE"}
    quiet: dict[str, str] = {}
    assert choose_omp_wait_policy(quiet, load=0.4, cores=2, others=2) is None and quiet == {}
    just_idle: dict[str, str] = {}      # the load average still remembers a job that has ended
    assert choose_omp_wait_policy(just_idle, load=1.8, cores=2, others=0) is None and just_idle == {}


def test_runnable_tasks_are_read_from_proc() -> None:
    others = other_runnable_tasks()
    assert others is None or others >= 0


def test_a_policy_the_user_set_is_kept() -> None:
    mine = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert choose_omp_wait_policy(mine, load=8.0, cores=2) == "ACTIVE" and mine == {"OMP_WAIT_POLICY": "ACTIVE"}
