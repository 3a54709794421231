"""``DurableBatchWriter``: staged files appear only on commit, complete; a failure leaves only the old files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoder.data.atomic import DurableBatchWriter


def test_files_appear_on_commit_with_their_content(tmp_path: Path) -> None:
    writer = DurableBatchWriter()
    writer.add(tmp_path / "a" / "one.bin", b"first")
    writer.add_npz(tmp_path / "a" / "two.npz", {"x": np.arange(3)})
    assert tmp_path / "a" / "one.bin" in writer
    assert not (tmp_path / "a" / "one.bin").exists()          # staged, not yet in place
    writer.commit()
    assert (tmp_path / "a" / "one.bin").read_bytes() == b"first"
    assert np.load(tmp_path / "a" / "two.npz")["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["one.bin", "two.npz"]   # no temp file left


def test_a_second_add_of_a_target_replaces_the_first(tmp_path: Path) -> None:
    with DurableBatchWriter() as writer:
        writer.add(tmp_path / "f", b"old")
        writer.add(tmp_path / "f", b"new")
    assert (tmp_path / "f").read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_an_error_inside_the_block_discards_the_staged_files(tmp_path: Path) -> None:
    (tmp_path / "kept").write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        with DurableBatchWriter() as writer:
            writer.add(tmp_path / "kept", b"replacement")
            writer.add(tmp_path / "new", b"data")
            raise RuntimeError("reader failed")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]
    assert (tmp_path / "kept").read_bytes() == b"previous"


def test_passing_the_byte_bound_commits_early(tmp_path: Path) -> None:
    writer = DurableBatchWriter(max_pending_bytes=10)
    writer.add(tmp_path / "small", b"1234")
    assert not (tmp_path / "small").exists()
    writer.add(tmp_path / "big", b"0123456789")
    assert (tmp_path / "small").read_bytes() == b"1234" and (tmp_path / "big").exists()
