"""Reading upload bytes in a worker process with time and memory limits (encoder.data.readers.sandbox)."""
from __future__ import annotations

import io
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from encoder.data.errors import PoseDataError
from encoder.data.readers import read_pose_file
from encoder.data.readers.sandbox import SandboxLimits, read_pose_bytes
from tests.support.hostile_files import write_crowd, write_span_bomb, write_zip_bomb


def _temp_entries() -> set[str]:
    return set(p.name for p in Path(tempfile.gettempdir()).iterdir())


def test_bytes_read_in_the_worker_equal_a_direct_read(tmp_path):
    path = write_crowd(tmp_path / "crowd.json", 6, 12)
    sequences = read_pose_bytes("my walk.json", path.read_bytes(), person="all")
    direct = read_pose_file(path, person="all")
    assert [s.name for s in sequences] == ["my walk"] + [f"my walk_person{i}" for i in range(1, 6)]
    assert all(s.source == "my walk.json" for s in sequences)
    for got, want in zip(sequences, direct):
        np.testing.assert_array_equal(got.joints, want.joints)
        np.testing.assert_array_equal(got.confidence, want.confidence)


@pytest.mark.slow
def test_hostile_uploads_are_refused_naming_the_upload_and_the_limit(tmp_path):
    span = write_span_bomb(tmp_path / "span.json").read_bytes()
    with pytest.raises(PoseDataError) as err:
        read_pose_bytes("span.json", span)
    assert str(err.value) == "span.json: 1000000 frames (frame ids 0 to 999999) is over the limit of 100000 frames"
    bomb = write_zip_bomb(tmp_path / "bomb.npz", shape=(300_000, 33, 3)).read_bytes()
    with pytest.raises(PoseDataError, match=r"^bomb\.npz: .*over the limit of 100000 frames"):
        read_pose_bytes("bomb.npz", bomb)


@pytest.mark.slow
def test_a_read_over_the_time_limit_is_killed_and_leaves_no_temp_file(tmp_path):
    data = write_crowd(tmp_path / "crowd.json", 150, 40).read_bytes()
    before = _temp_entries()
    with pytest.raises(PoseDataError) as err:
        read_pose_bytes("crowd.json", data, sandbox=SandboxLimits(timeout_s=0.01))
    assert str(err.value) == "crowd.json: reading it took over 0.01 s, the time limit of an upload"
    assert not [n for n in _temp_entries() - before if "posestyle" in n or n.endswith(".json")]


@pytest.mark.slow
def test_a_read_over_the_memory_limit_is_refused(tmp_path):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, joints=np.ones((60_000, 33, 3)))          # 48 MB once inflated
    with pytest.raises(PoseDataError) as err:
        read_pose_bytes("long.npz", buffer.getvalue(), sandbox=SandboxLimits(memory_bytes=16 * 1024 * 1024))
    assert str(err.value) == "long.npz: reading it needs more than the 16 MiB memory limit of an upload"
    assert read_pose_bytes("long.npz", buffer.getvalue())[0].num_frames == 60_000


@pytest.mark.slow
def test_the_caller_stays_responsive_while_the_worker_reads(tmp_path):
    data = write_crowd(tmp_path / "crowd.json", 1000, 5).read_bytes()
    done = threading.Event()
    outcome: list[object] = []

    def upload() -> None:
        outcome.append(read_pose_bytes("crowd.json", data))
        done.set()

    thread = threading.Thread(target=upload)
    thread.start()
    ticks = 0
    while not done.wait(0.01):
        ticks += 1                       # the calling process keeps running Python meanwhile
    thread.join()
    assert ticks > 3 and len(outcome[0]) == 1     # type: ignore[arg-type]
