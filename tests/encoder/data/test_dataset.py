"""The versioned dataset cache and ``ingest``: good files kept, bad ones listed, versions, reuse."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from encoder.data.dataset import (
    ARRAYS_DIR,
    HISTORY_DIR,
    MANIFEST_NAME,
    DatasetCache,
    dataset_version,
    discover_inputs,
    ingest,
    read_npz,
)
from encoder.data.errors import PoseDataError
from encoder.data.labels import CsvLabels, PatternLabels
from encoder.data.readers import read_pose_file
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import NUM_JOINTS


# -- tiny fixtures in several formats ---------------------------------------------------------
def make_sequence(seed: int, frames: int = 12, dims: int = 3, label: str | None = None) -> PoseSequence:
    rng = np.random.default_rng(seed)
    joints = rng.normal(size=(frames, NUM_JOINTS, dims)).astype(np.float32)
    if dims == 2:
        joints = 500.0 + 100.0 * joints
    return PoseSequence(joints=joints, confidence=np.ones((frames, NUM_JOINTS), np.float32), fps=30.0,
                        label=label)


def write_npz(path: Path, seq: PoseSequence) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **seq.to_arrays())
    return path


def write_coco_json(path: Path, seed: int, frames: int = 8) -> Path:
    """COCO results layout: one record per frame, keypoints [x, y, v] * 17."""
    rng = np.random.default_rng(seed)
    records = []
    for t in range(frames):
        xy = 400.0 + 200.0 * rng.random((NUM_JOINTS, 2))
        flat = np.concatenate([xy, np.full((NUM_JOINTS, 1), 0.9)], axis=1).ravel()
        records.append({"image_id": t, "category_id": 1, "keypoints": flat.round(2).tolist(), "score": 0.95})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path


_BVH_CHAIN = [  # (name, parent, offset in cm), Bandai-Namco joint names
    ("Hips", None, (0, 90, 0)), ("Spine", "Hips", (0, 10, 0)), ("Chest", "Spine", (0, 15, 0)),
    ("Neck", "Chest", (0, 20, 0)), ("Head", "Neck", (0, 10, 0)),
    ("UpperArm_L", "Chest", (18, 15, 0)), ("LowerArm_L", "UpperArm_L", (0, -28, 0)),
    ("Hand_L", "LowerArm_L", (0, -25, 0)),
    ("UpperArm_R", "Chest", (-18, 15, 0)), ("LowerArm_R", "UpperArm_R", (0, -28, 0)),
    ("Hand_R", "LowerArm_R", (0, -25, 0)),
    ("UpperLeg_L", "Hips", (10, -5, 0)), ("LowerLeg_L", "UpperLeg_L", (0, -42, 0)),
    ("Foot_L", "LowerLeg_L", (0, -40, 0)),
    ("UpperLeg_R", "Hips", (-10, -5, 0)), ("LowerLeg_R", "UpperLeg_R", (0, -42, 0)),
    ("Foot_R", "LowerLeg_R", (0, -40, 0)),
]


def write_bvh(path: Path, seed: int, frames: int = 6) -> Path:
    """A small walking-ish BVH in centimetres: root with 6 channels, every other joint 3 rotations."""
    children: dict[str | None, list[str]] = {}
    for name, parent, _ in _BVH_CHAIN:
        children.setdefault(parent, []).append(name)
    offsets = {name: off for name, _, off in _BVH_CHAIN}
    lines = ["HIERARCHY"]

    def emit(name: str, depth: int) -> None:
        pad = "\t" * depth
        lines.append(f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {name}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET {' '.join(f'{v:.2f}' for v in offsets[name])}")
        channels = ("Xposition Yposition Zposition " if depth == 0 else "") + "Zrotation Xrotation Yrotation"
        lines.append(f"{pad}\tCHANNELS {len(channels.split())} {channels}")
        for child in children.get(name, []):
            emit(child, depth + 1)
        if name not in children:
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET 0.00 -5.00 0.00", f"{pad}\t}}"])
        lines.append(f"{pad}}}")

    emit("Hips", 0)
    rng = np.random.default_rng(seed)
    n_channels = 3 + 3 * len(_BVH_CHAIN)
    lines += ["MOTION", f"Frames: {frames}", "Frame Time: 0.0333333"]
    for t in range(frames):
        values = rng.normal(scale=8.0, size=n_channels)
        values[:3] = (0.0, 90.0, 5.0 * t)
        lines.append(" ".join(f"{v:.4f}" for v in values))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def mixed_folder(tmp_path: Path) -> Path:
    """Good files of three formats (one in a subfolder) and three bad ones."""
    root = tmp_path / "poses"
    write_npz(root / "walk_strut_1.npz", make_sequence(1))
    write_coco_json(root / "walk_glide_2.json", seed=2)
    write_bvh(root / "mocap" / "walk_strut_3.bvh", seed=3)
    (root / "truncated.json").write_text('[{"image_id": 0, "keypoints": [1, 2')
    bad = np.zeros((5, NUM_JOINTS, 3))
    bad[2, 3, 1] = np.nan
    np.save(root / "nan_values.npy", bad)
    (root / "mocap" / "empty.bvh").write_bytes(b"")
    (root / "notes.md").write_text("not pose data, ignored when walking a folder")
    return root


PATTERN = PatternLabels(r"walk_(?P<label>[a-z]+)_(?P<take>\d+)")


# -- ingest -----------------------------------------------------------------------------------
def test_ingest_keeps_good_files_and_lists_bad_ones_with_reason(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    report = ingest([mixed_folder], out, PATTERN, progress=False)

    assert report.read == 3 and report.written == 3 and report.reused == 0
    assert report.failed == 3
    assert report.label_counts == {"glide": 1, "strut": 2}
    reasons = {Path(e.source).name: e.error for e in report.errors}
    assert set(reasons) == {"truncated.json", "nan_values.npy", "empty.bvh"}
    assert "malformed JSON" in reasons["truncated.json"]
    assert "NaN" in reasons["nan_values.npy"]
    assert "empty" in reasons["empty.bvh"]
    assert all("\n" not in str(e) for e in report.errors)

    cache = DatasetCache.open(out)
    assert len(cache) == 3 and cache.version == report.version
    assert sorted(cache.names) == ["walk_glide_2", "walk_strut_1", "walk_strut_3"]
    assert cache.labels() == ["glide", "strut"]
    dims = {it.name: it.dims for it in cache.items}
    assert dims == {"walk_glide_2": 2, "walk_strut_1": 3, "walk_strut_3": 3}
    # what the cache gives back is exactly what the reader read, with the label attached
    for item in cache.items:
        original = read_pose_file(item.source)[0]
        loaded = cache.load(item.name)
        np.testing.assert_array_equal(loaded.joints, original.joints)
        np.testing.assert_array_equal(loaded.confidence, original.confidence)
        assert loaded.fps == original.fps == item.fps
        assert loaded.label == item.label and loaded.metadata["take"] == item.name.rsplit("_", 1)[1]
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert {Path(e["source"]).name for e in manifest["errors"]} == set(reasons)
    assert not list(out.rglob("*.tmp"))


def test_manifest_records_provenance(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    ingest([mixed_folder], out, PATTERN, progress=False)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["format_version"] == 1
    assert manifest["source_paths"] == [str(mixed_folder.resolve())]
    assert manifest["label_source"] == {"kind": "pattern", "pattern": PATTERN.pattern, "label_group": "label"}
    assert manifest["created"].endswith("+00:00")
    item = next(it for it in manifest["items"] if it["name"] == "walk_strut_3")
    assert set(item) == {"name", "source", "content_hash", "label", "metadata", "frames", "fps", "dims",
                         "skeleton"}
    assert item["frames"] == 6 and item["fps"] == 30.0 and item["skeleton"] == "coco17"
    assert (out / ARRAYS_DIR / f"{item['content_hash']}.npz").is_file()


def test_version_is_stable_across_reingest_and_reuses_arrays(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    first = ingest([mixed_folder], out, PATTERN, progress=False)
    mtimes = {p: p.stat().st_mtime_ns for p in (out / ARRAYS_DIR).iterdir()}
    second = ingest([mixed_folder], out, PATTERN, progress=False)
    assert second.version == first.version
    assert second.previous_version == first.version
    assert (second.written, second.reused) == (0, 3)
    assert {p: p.stat().st_mtime_ns for p in (out / ARRAYS_DIR).iterdir()} == mtimes


def test_version_does_not_depend_on_input_order(tmp_path: Path) -> None:
    files = [write_npz(tmp_path / "in" / f"walk_calm_{i}.npz", make_sequence(i)) for i in range(4)]
    forward = ingest(files, tmp_path / "a", PATTERN, progress=False)
    backward = ingest(files[::-1], tmp_path / "b", PATTERN, progress=False)
    assert forward.version == backward.version


def test_version_changes_when_a_label_or_content_changes(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for i in range(3):
        write_npz(folder / f"take_{i}.npz", make_sequence(i))
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("name,label\ntake_0,calm\ntake_1,calm\ntake_2,brisk\n")
    out = tmp_path / "dataset"
    v1 = ingest([folder], out, CsvLabels(csv_path), progress=False)

    csv_path.write_text("name,label\ntake_0,calm\ntake_1,brisk\ntake_2,brisk\n")
    v2 = ingest([folder], out, CsvLabels(csv_path), progress=False)
    assert v2.version != v1.version
    assert (v2.written, v2.reused) == (0, 3)          # same motion, only labels changed
    assert v2.previous_version == v1.version

    write_npz(folder / "take_2.npz", make_sequence(99))
    v3 = ingest([folder], out, CsvLabels(csv_path), progress=False)
    assert v3.version not in (v1.version, v2.version)
    assert (v3.written, v3.reused) == (1, 2)

    # every version stays in the history and can still be opened and loaded
    assert {p.stem for p in (out / HISTORY_DIR).glob("*.json")} == {v1.version, v2.version, v3.version}
    assert DatasetCache.open(out).history() == [v1.version, v2.version, v3.version]
    old = DatasetCache.open(out, version=v1.version)
    assert old.load("take_1").label == "calm"
    assert DatasetCache.open(out).load("take_1").label == "brisk"
    np.testing.assert_array_equal(old.load("take_2").joints, make_sequence(2).joints)


def test_nothing_ingested_leaves_existing_cache_untouched(tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    good = ingest([write_npz(tmp_path / "ok.npz", make_sequence(0))], out, None, progress=False)
    before = (out / MANIFEST_NAME).read_bytes()
    (tmp_path / "broken.json").write_text("{")
    report = ingest([tmp_path / "broken.json", tmp_path / "missing.npz"], out, None, progress=False)
    assert not report.ok and report.version is None and report.failed == 2
    assert "no such file" in next(e.error for e in report.errors if e.source.endswith("missing.npz"))
    assert (out / MANIFEST_NAME).read_bytes() == before
    assert DatasetCache.open(out).version == good.version


def test_unlabelled_sequences_keep_their_own_label(tmp_path: Path) -> None:
    write_npz(tmp_path / "in" / "walk_brisk_1.npz", make_sequence(0, label="ignored"))
    write_npz(tmp_path / "in" / "other.npz", make_sequence(1, label="from-file"))
    write_npz(tmp_path / "in" / "plain.npz", make_sequence(2))
    report = ingest([tmp_path / "in"], tmp_path / "ds", PATTERN, progress=False)
    cache = DatasetCache.open(tmp_path / "ds")
    assert {it.name: it.label for it in cache.items} == {"walk_brisk_1": "brisk", "other": "from-file",
                                                         "plain": None}
    assert report.label_counts == {"(unlabelled)": 1, "brisk": 1, "from-file": 1}
    assert cache.labels() == ["brisk", "from-file"]


def test_sidecar_annotations_openpose_folders_and_file_lists(tmp_path: Path) -> None:
    root = tmp_path / "in"
    write_bvh(root / "take_a.bvh", seed=1)
    (root / "take_a.json").write_text('{"content": 3, "style": 0}')      # annotation beside the take
    frames = root / "clip_openpose"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for t in range(5):
        body25 = np.concatenate([300 + 100 * rng.random((25, 2)), np.full((25, 1), 0.8)], axis=1)
        (frames / f"clip_{t:012d}_keypoints.json").write_text(
            json.dumps({"people": [{"pose_keypoints_2d": body25.ravel().round(2).tolist()}]}))
    write_npz(tmp_path / "elsewhere" / "listed.npz", make_sequence(5))
    file_list = tmp_path / "lists" / "files.txt"
    file_list.parent.mkdir()
    file_list.write_text("# inputs\n../elsewhere/listed.npz\n\n../elsewhere/absent.npz\n")

    inputs, errors, skipped = discover_inputs([root, file_list, root / "take_a.bvh"])
    assert [p.name for p in inputs] == ["take_a.bvh", "clip_openpose", "listed.npz"]
    assert skipped == 1
    assert [Path(e.source).name for e in errors] == ["absent.npz"]

    report = ingest([root, file_list], tmp_path / "ds", None, progress=False)
    assert report.read == 3 and report.skipped == 1 and report.failed == 1
    cache = DatasetCache.open(tmp_path / "ds")
    clip = cache.load("clip_openpose")
    assert clip.num_frames == 5 and clip.dims == 2


def test_unsupported_explicit_file_and_duplicate_names_are_errors(tmp_path: Path) -> None:
    write_npz(tmp_path / "a" / "walk.npz", make_sequence(0))
    write_npz(tmp_path / "b" / "walk.npz", make_sequence(1))
    (tmp_path / "clip.gif").write_bytes(b"\x00")
    report = ingest([tmp_path / "a", tmp_path / "b", tmp_path / "clip.gif"], tmp_path / "ds", None,
                    progress=False)
    assert report.read == 1
    messages = sorted(str(e) for e in report.errors)
    assert any("clip.gif" in m and "unsupported file type '.gif'" in m for m in messages)
    assert any(m.startswith(str(tmp_path / "b" / "walk.npz")) and "duplicate sequence name 'walk'" in m
               for m in messages)


def test_worker_pool_gives_the_same_dataset_in_the_same_order(mixed_folder: Path, tmp_path: Path) -> None:
    serial = ingest([mixed_folder], tmp_path / "serial", PATTERN, workers=1, progress=False)
    pooled = ingest([mixed_folder], tmp_path / "pooled", PATTERN, workers=2, progress=False)
    assert pooled.version == serial.version
    assert pooled.errors == serial.errors
    assert DatasetCache.open(tmp_path / "pooled").names == DatasetCache.open(tmp_path / "serial").names


def test_dataset_inside_an_input_folder_is_not_read_back(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_npz(folder / "take_1.npz", make_sequence(1))
    write_npz(folder / "take_2.npz", make_sequence(2))
    first = ingest([folder], folder / "dataset", None, progress=False)
    second = ingest([folder], folder / "dataset", None, progress=False)
    assert (first.read, second.read, second.failed) == (2, 2, 0)
    assert second.version == first.version


def test_output_must_be_a_cache_or_a_new_folder(tmp_path: Path) -> None:
    take = write_npz(tmp_path / "in" / "take.npz", make_sequence(0))
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(PoseDataError, match="must be a folder"):
        ingest([take], tmp_path / "a_file", None, progress=False)
    with pytest.raises(PoseDataError, match="not a dataset cache"):
        ingest([take], tmp_path / "in", None, progress=False)
    (tmp_path / "empty").mkdir()
    assert ingest([take], tmp_path / "empty", None, progress=False).read == 1


def test_every_person_of_a_file_gets_its_own_name(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = []
    for t in range(6):
        people = []
        for track, (x0, size) in enumerate(((300.0, 300.0), (1200.0, 120.0))):   # the big one is the main
            xy = x0 + size * rng.random((NUM_JOINTS, 2))
            people.append({"track_id": track, "keypoints": xy.round(2).tolist(),
                           "keypoint_scores": [0.9] * NUM_JOINTS})
        frames.append({"frame_id": t, "instances": people})
    source = tmp_path / "in" / "crowd.json"
    source.parent.mkdir()
    source.write_text(json.dumps(frames))

    main_only = ingest([source], tmp_path / "main", None, progress=False)
    everyone = ingest([source], tmp_path / "all", None, person="all", progress=False)
    assert DatasetCache.open(tmp_path / "main").names == ["crowd"] and main_only.read == 1
    cache = DatasetCache.open(tmp_path / "all")
    assert cache.names == ["crowd", "crowd_person1"] and everyone.read == 2
    np.testing.assert_array_equal(cache.load("crowd").joints,
                                  DatasetCache.open(tmp_path / "main").load("crowd").joints)


def test_bad_person_choice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PoseDataError, match="--person"):
        ingest([tmp_path], tmp_path / "ds", None, person="tallest", progress=False)


# -- the cache --------------------------------------------------------------------------------
@pytest.fixture()
def small_cache(tmp_path: Path) -> DatasetCache:
    folder = tmp_path / "in"
    for i, style in enumerate(["calm", "brisk", "calm", "sway", "brisk"]):
        write_npz(folder / f"walk_{style}_{i}.npz", make_sequence(i))
    ingest([folder], tmp_path / "ds", PATTERN, progress=False)
    return DatasetCache.open(tmp_path / "ds")


def test_select_split_and_iteration(small_cache: DatasetCache, tmp_path: Path) -> None:
    subset = small_cache.select(["walk_sway_3", "walk_calm_0"])
    assert subset.names == ["walk_sway_3", "walk_calm_0"]
    assert subset.labels() == ["calm", "sway"]
    assert subset.version == dataset_version(subset.items) != small_cache.version
    assert subset.dataset_version == small_cache.version
    assert [s.name for s in subset.iter_sequences()] == ["walk_sway_3", "walk_calm_0"]

    split_file = tmp_path / "train.txt"
    split_file.write_text("# train split\nwalk_calm_0\nwalk_brisk_1\n\n")
    assert small_cache.split(split_file).names == ["walk_calm_0", "walk_brisk_1"]
    split_file.write_text("walk_calm_0\nwalk_nope_9\n")
    with pytest.raises(PoseDataError) as err:
        small_cache.split(split_file)
    assert str(err.value).startswith(str(split_file)) and "walk_nope_9" in str(err.value)
    with pytest.raises(PoseDataError, match="no sequence named 'ghost'"):
        small_cache.load("ghost")


def test_corrupt_or_pickled_array_file_is_refused(small_cache: DatasetCache) -> None:
    item = small_cache.item("walk_calm_0")
    path = small_cache.array_path(item.content_hash)
    np.savez(path, **make_sequence(123).to_arrays())                     # other content, same name
    with pytest.raises(PoseDataError, match="corrupt"):
        small_cache.load("walk_calm_0")
    np.savez(path, joints=np.array([{"x": 1}], dtype=object), confidence=np.ones(1))
    with pytest.raises(PoseDataError, match="unreadable array file"):
        small_cache.load("walk_calm_0")
    path.unlink()
    with pytest.raises(PoseDataError, match="missing"):
        small_cache.load("walk_calm_0")


def test_read_npz_gives_what_np_load_gives(small_cache: DatasetCache, tmp_path: Path) -> None:
    """Plain arrays are parsed directly; Fortran order, structured dtypes and compressed members take
    np.load's path; object arrays and non-zip bytes are refused, so the cache reports them."""
    import io
    import zipfile

    def as_np_load(data: bytes) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
            return {k: loaded[k] for k in loaded.files}

    item = small_cache.item("walk_calm_0")
    cached = small_cache.array_path(item.content_hash).read_bytes()
    odd = io.BytesIO()
    np.savez(odd, f=np.asfortranarray(np.arange(12.0).reshape(3, 4)), s=np.zeros(2, dtype=[("a", "<f4")]),
             u=np.array("text"), e=np.zeros((0, 17, 2), np.float32))
    packed = io.BytesIO()
    np.savez_compressed(packed, x=np.arange(5, dtype=np.int16))
    for data in (cached, odd.getvalue(), packed.getvalue()):
        got, want = read_npz(data), as_np_load(data)
        assert got.keys() == want.keys()
        for key in want:
            assert got[key].dtype == want[key].dtype and got[key].flags.writeable
            np.testing.assert_array_equal(got[key], want[key])
    pickled = io.BytesIO()
    np.savez(pickled, o=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError):
        read_npz(pickled.getvalue())
    with pytest.raises(zipfile.BadZipFile):
        read_npz(b"not a zip file")


def test_prefetch_and_evict_advise_the_named_items_files_and_leave_problems_to_load(
        small_cache: DatasetCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """WILLNEED goes to exactly the named items' array files (matched by inode); an unknown name or a
    missing file is skipped silently, and load still reports the missing file."""
    import os

    if not hasattr(os, "posix_fadvise"):
        pytest.skip("no posix_fadvise on this OS")
    advised: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "posix_fadvise",
                        lambda fd, offset, length, advice: advised.append((os.fstat(fd).st_ino, advice)))
    gone = small_cache.item("walk_sway_3")
    small_cache.array_path(gone.content_hash).unlink()
    small_cache.prefetch(["walk_calm_0", "no-such-walk", "walk_sway_3", "walk_brisk_1"])
    expected = [small_cache.array_path(small_cache.item(n).content_hash).stat().st_ino
                for n in ("walk_calm_0", "walk_brisk_1")]
    assert advised == [(ino, os.POSIX_FADV_WILLNEED) for ino in expected]
    advised.clear()                                    # the bench's cold start: the same files, DONTNEED
    assert small_cache.evict(["walk_calm_0", "walk_sway_3", "walk_brisk_1"]) is True
    assert advised == [(ino, os.POSIX_FADV_DONTNEED) for ino in expected]
    assert small_cache.load("walk_calm_0").name == "walk_calm_0"
    with pytest.raises(PoseDataError, match="missing"):
        small_cache.load("walk_sway_3")


def test_load_gives_the_items_name_source_and_label_not_what_the_array_file_recorded(
        small_cache: DatasetCache) -> None:
    """One array file serves every item with its content: the item's own fields win over the file's."""
    item = small_cache.item("walk_calm_0")
    path = small_cache.array_path(item.content_hash)
    recorded = PoseSequence.from_arrays(dict(np.load(path, allow_pickle=False)))
    np.savez(path, **recorded.with_(name="other", source="elsewhere/other.npz", label="brisk").to_arrays())
    loaded = small_cache.load("walk_calm_0")
    assert (loaded.name, loaded.source, loaded.label) == (item.name, item.source, item.label)


def test_open_refuses_non_cache_and_hand_edited_manifest(small_cache: DatasetCache, tmp_path: Path) -> None:
    with pytest.raises(PoseDataError, match="not a dataset cache"):
        DatasetCache.open(tmp_path / "in")
    with pytest.raises(PoseDataError, match="no version 0000"):
        DatasetCache.open(small_cache.root, version="0000")
    manifest_path = small_cache.root / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["items"][0]["label"] = "edited"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(PoseDataError, match="edited by hand"):
        DatasetCache.open(small_cache.root)
    manifest_path.write_text("{not json")
    with pytest.raises(PoseDataError, match="unreadable manifest"):
        DatasetCache.open(small_cache.root)
