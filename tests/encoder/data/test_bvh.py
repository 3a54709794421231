"""BVH reader: parsing, forward kinematics checked analytically, COCO-17 mapping, units, errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from encoder.data.errors import PoseDataError
from encoder.data.readers import read_bvh, read_bvh_full, read_pose_file
from encoder.data.skeleton import JOINT_INDEX, NUM_JOINTS

ROOT6 = "Xposition Yposition Zposition Zrotation Xrotation Yrotation"


def write(tmp_path: Path, text: str, name: str = "take.bvh") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def motion(rows: list[list[float]], frame_time: float = 1 / 30) -> str:
    lines = "\n".join(" ".join(f"{v:.6f}" for v in row) for row in rows)
    return f"MOTION\nFrames: {len(rows)}\nFrame Time: {frame_time:.7f}\n{lines}\n"


def chain_bvh(child_channels: str, rows: list[list[float]], child_offset=(1.0, 0.0, 0.0),
              end_offset=(0.0, 1.0, 0.0)) -> str:
    """ROOT Base (6 channels) -> JOINT Arm (given channels) -> End Site."""
    n = len(child_channels.split())
    return (
        "HIERARCHY\nROOT Base\n{\n  OFFSET 0 0 0\n  CHANNELS 6 " + ROOT6 + "\n"
        f"  JOINT Arm\n  {{\n    OFFSET {child_offset[0]} {child_offset[1]} {child_offset[2]}\n"
        f"    CHANNELS {n} {child_channels}\n"
        f"    End Site\n    {{\n      OFFSET {end_offset[0]} {end_offset[1]} {end_offset[2]}\n    }}\n"
        "  }\n}\n" + motion(rows)
    )


def full(path: Path) -> dict[str, np.ndarray]:
    names, parents, positions, fps = read_bvh_full(path, scale=1.0)
    return {n: positions[:, i] for i, n in enumerate(names)}


# --- forward kinematics -----------------------------------------------------------------------------

def test_root_translation_and_z_rotation_move_child_to_known_spot(tmp_path):
    # frame 0: nothing rotated; frame 1: root at (10, 20, 30) turned 90 deg about Z.
    rows = [[0, 0, 0, 0, 0, 0, 0, 0, 0], [10, 20, 30, 90, 0, 0, 0, 0, 0]]
    pos = full(write(tmp_path, chain_bvh("Zrotation Xrotation Yrotation", rows)))
    np.testing.assert_allclose(pos["Base"][1], [10, 20, 30], atol=1e-9)
    np.testing.assert_allclose(pos["Arm"][0], [1, 0, 0], atol=1e-9)
    np.testing.assert_allclose(pos["Arm"][1], [10, 21, 30], atol=1e-9)        # (1,0,0) -> (0,1,0)
    np.testing.assert_allclose(pos["Arm_End"][0], [1, 1, 0], atol=1e-9)
    np.testing.assert_allclose(pos["Arm_End"][1], [9, 21, 30], atol=1e-9)     # (0,1,0) -> (-1,0,0)


def test_rotations_compose_down_the_chain(tmp_path):
    # Root and Arm each turn 90 deg about Z: the End Site offset (1,0,0) is turned 180 deg.
    rows = [[0, 0, 0, 90, 0, 0, 90, 0, 0]]
    pos = full(write(tmp_path, chain_bvh("Zrotation Xrotation Yrotation", rows, end_offset=(1, 0, 0))))
    np.testing.assert_allclose(pos["Arm"][0], [0, 1, 0], atol=1e-9)
    np.testing.assert_allclose(pos["Arm_End"][0], [-1, 1, 0], atol=1e-9)


@pytest.mark.parametrize("order, expected_end", [
    # R = Rx(90) Rz(90): (1,0,0) -Rz-> (0,1,0) -Rx-> (0,0,1)
    ("Xrotation Zrotation", [0, 0, 1]),
    # R = Rz(90) Rx(90): (1,0,0) -Rx-> (1,0,0) -Rz-> (0,1,0)
    ("Zrotation Xrotation", [0, 1, 0]),
])
def test_channel_order_is_intrinsic_as_listed(tmp_path, order, expected_end):
    rows = [[0, 0, 0, 0, 0, 0, 90, 90]]
    pos = full(write(tmp_path, chain_bvh(order, rows, child_offset=(0, 0, 0), end_offset=(1, 0, 0))))
    np.testing.assert_allclose(pos["Arm_End"][0], expected_end, atol=1e-9)


@pytest.mark.parametrize("order", ["XYZ", "ZXY", "YZX", "ZYX"])
def test_arbitrary_angles_match_scipy_intrinsic_euler(tmp_path, order):
    rng = np.random.default_rng(7)
    angles = np.round(rng.uniform(-170, 170, size=(5, 3)), 6)   # as written to the file
    channels = " ".join(f"{axis}rotation" for axis in order)
    rows = [[0, 0, 0, 0, 0, 0, *a] for a in angles]
    end = np.array([0.3, -1.2, 2.0])
    pos = full(write(tmp_path, chain_bvh(channels, rows, child_offset=(0, 0, 0), end_offset=tuple(end))))
    expected = Rotation.from_euler(order, angles, degrees=True).apply(end)   # upper case = intrinsic
    np.testing.assert_allclose(pos["Arm_End"], expected, atol=1e-9)


def test_xyz_and_zxy_orders_give_different_positions(tmp_path):
    rows = [[0, 0, 0, 0, 0, 0, 30, 40, 50]]
    a = full(write(tmp_path, chain_bvh("Xrotation Yrotation Zrotation", rows, end_offset=(1, 0, 0)), "a.bvh"))
    b = full(write(tmp_path, chain_bvh("Zrotation Xrotation Yrotation", rows, end_offset=(1, 0, 0)), "b.bvh"))
    assert np.linalg.norm(a["Arm_End"] - b["Arm_End"]) > 0.1


def test_position_channels_replace_offset_wherever_listed(tmp_path):
    # Arm has 6 channels with positions listed after rotations; its offset (1,0,0) is replaced.
    rows = [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0], [0, 0, 0, 90, 0, 0, 0, 0, 0, 2, 0, 0]]
    text = chain_bvh("Zrotation Xrotation Yrotation Xposition Yposition Zposition", rows)
    pos = full(write(tmp_path, text))
    np.testing.assert_allclose(pos["Arm"][0], [0, 5, 0], atol=1e-9)
    np.testing.assert_allclose(pos["Arm"][1], [0, 2, 0], atol=1e-9)   # (2,0,0) turned by the root


def test_three_channel_root_and_position_only_joint(tmp_path):
    text = ("HIERARCHY\nROOT Base\n{\nOFFSET 1 2 3\nCHANNELS 3 Yrotation Xrotation Zrotation\n"
            "JOINT Slide\n{\nOFFSET 0 0 0\nCHANNELS 3 Xposition Yposition Zposition\n"
            "End Site\n{\nOFFSET 0 0 1\n}\n}\n}\n" + motion([[90, 0, 0, 1, 0, 0]]))
    pos = full(write(tmp_path, text))
    np.testing.assert_allclose(pos["Base"][0], [1, 2, 3], atol=1e-9)            # no position channels
    np.testing.assert_allclose(pos["Slide"][0], [1, 2, 2], atol=1e-9)           # Ry(90): (1,0,0)->(0,0,-1)
    np.testing.assert_allclose(pos["Slide_End"][0], [2, 2, 2], atol=1e-9)       # (0,0,1)->(1,0,0)


def test_full_reader_reports_names_parents_fps(tmp_path):
    motion_rows = [[0] * 9] * 4
    names, parents, positions, fps = read_bvh_full(
        write(tmp_path, chain_bvh("Zrotation Xrotation Yrotation", motion_rows)), scale=1.0)
    assert names == ["Base", "Arm", "Arm_End"]
    assert parents == [-1, 0, 1]
    assert positions.shape == (4, 3, 3)
    assert fps == 30.0


def test_whitespace_variants_parse_the_same(tmp_path):
    rows = [[1, 2, 3, 10, 20, 30, 5, 6, 7]]
    text = chain_bvh("Zrotation Xrotation Yrotation", rows)
    a = full(write(tmp_path, text, "unix.bvh"))
    b = full(write(tmp_path, text.replace("\n", "\r\n").replace("  ", "\t"), "dos.bvh"))
    for name in a:
        np.testing.assert_allclose(a[name], b[name])


def test_blank_lines_between_frames_are_skipped_quietly(tmp_path, recwarn):
    rows = [[1, 2, 3, 10, 20, 30, 5, 6, 7], [2, 3, 4, 11, 21, 31, 6, 7, 8]]
    text = chain_bvh("Zrotation Xrotation Yrotation", rows)
    head, first, second = text.rsplit("\n", 3)[:3]
    a = full(write(tmp_path, text, "plain.bvh"))
    b = full(write(tmp_path, f"{head}\n{first}\n\n{second}\n\n", "blank.bvh"))
    for name in a:
        np.testing.assert_allclose(a[name], b[name])
    assert not [w for w in recwarn if "contained no data" in str(w.message)]


@pytest.mark.parametrize("frame_time, fps", [("0.0333333", 30.0), ("0.0333", 30.0), ("0.008333", 120.0),
                                             ("0.04", 25.0), ("0.033367", 1 / 0.033367)])
def test_fps_is_inverse_frame_time(tmp_path, frame_time, fps):
    text = chain_bvh("Zrotation Xrotation Yrotation", [[0] * 9]).replace("Frame Time: 0.0333333",
                                                                        f"Frame Time: {frame_time}")
    assert read_bvh_full(write(tmp_path, text)).fps == pytest.approx(fps, rel=1e-9)


# --- humanoid: mapping onto COCO-17 and units ---------------------------------------------------

BANDAI_NAMES = {k: k for k in ("Hips", "Spine", "Chest", "Neck", "Head", "Shoulder_L", "UpperArm_L",
                               "LowerArm_L", "Hand_L", "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R",
                               "UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L", "UpperLeg_R", "LowerLeg_R",
                               "Foot_R", "Toes_R")}
CMU_NAMES = {**BANDAI_NAMES, "Shoulder_L": "LeftShoulder", "UpperArm_L": "LeftArm", "LowerArm_L": "LeftForeArm",
             "Hand_L": "LeftHand", "Shoulder_R": "RightShoulder", "UpperArm_R": "RightArm",
             "LowerArm_R": "RightForeArm", "Hand_R": "RightHand", "UpperLeg_L": "LeftUpLeg",
             "LowerLeg_L": "LeftLeg", "Foot_L": "LeftFoot", "Toes_L": "LeftToeBase", "UpperLeg_R": "RightUpLeg",
             "LowerLeg_R": "RightLeg", "Foot_R": "RightFoot", "Toes_R": "RightToeBase"}
MIXAMO_NAMES = {k: f"mixamorig:{v}" for k, v in CMU_NAMES.items()}

# T-pose offsets in centimetres, Y up, person faces +Z, left side at +X.
def _arm(side: str, sign: int):
    return (f"Shoulder_{side}", (5 * sign, 12, 0), [(f"UpperArm_{side}", (12 * sign, 0, 0), [
        (f"LowerArm_{side}", (28 * sign, 0, 0), [(f"Hand_{side}", (25 * sign, 0, 0), [])])])])


def _leg(side: str, sign: int):
    return (f"UpperLeg_{side}", (9 * sign, -5, 0), [(f"LowerLeg_{side}", (0, -42, 0), [
        (f"Foot_{side}", (0, -40, 0), [(f"Toes_{side}", (0, -8, 12), [])])])])


HUMANOID = ("Hips", (0, 0, 0), [
    ("Spine", (0, 10, 0), [("Chest", (0, 15, 0), [
        ("Neck", (0, 20, 0), [("Head", (0, 10, 0), [])]), _arm("L", 1), _arm("R", -1)])]),
    _leg("L", 1), _leg("R", -1),
])
HIP_HEIGHT_CM = 95.0


def humanoid_bvh(names: dict[str, str] = BANDAI_NAMES, frames: int = 5, unit: float = 1.0,
                 skip: tuple[str, ...] = ()) -> str:
    """Humanoid in T-pose walking along +Z at 1 cm per frame; ``unit`` rescales (0.01: metres)."""
    out = ["HIERARCHY"]

    def emit(node, depth, is_root):
        name, offset, children = node
        pad = "  " * depth
        out.append(f"{pad}{'ROOT' if is_root else 'JOINT'} {names[name]}")
        out.append(pad + "{")
        out.append(pad + "  OFFSET " + " ".join(f"{v * unit:g}" for v in offset))
        out.append(pad + ("  CHANNELS 6 " + ROOT6 if is_root else "  CHANNELS 3 Zrotation Xrotation Yrotation"))
        kept = [c for c in children if c[0] not in skip]
        for child in kept:
            emit(child, depth + 1, False)
        if not kept:
            out.append(pad + "  End Site\n" + pad + "  {\n" + pad + f"    OFFSET 0 {5 * unit:g} 0\n" + pad + "  }")
        out.append(pad + "}")

    emit(HUMANOID, 0, True)
    num_joints = sum(1 for line in out if "CHANNELS" in line)
    rows = [[0, HIP_HEIGHT_CM * unit, t * unit, 0, 0, 0] + [0] * (3 * (num_joints - 1)) for t in range(frames)]
    return "\n".join(out) + "\n" + motion(rows)


def expected_tpose_cm(chain: list[str]) -> np.ndarray:
    """World position (cm) of the last joint in a chain of names from Hips, at frame 0."""
    node, total = HUMANOID, np.array([0.0, HIP_HEIGHT_CM, 0.0])
    for name in chain[1:]:
        node = next(c for c in node[2] if c[0] == name)
        total = total + np.array(node[1], dtype=float)
    return total


@pytest.mark.parametrize("names", [BANDAI_NAMES, CMU_NAMES, MIXAMO_NAMES], ids=["bandai", "cmu", "mixamo"])
def test_humanoid_maps_onto_coco17_in_metres(tmp_path, names):
    seq = read_bvh(write(tmp_path, humanoid_bvh(names)))
    assert seq.joints.shape == (5, NUM_JOINTS, 3) and seq.dims == 3
    assert seq.metadata["units_scale"] == 0.01
    j = {name: seq.joints[0, idx] for name, idx in JOINT_INDEX.items()}
    np.testing.assert_allclose(j["left_hip"], expected_tpose_cm(["Hips", "UpperLeg_L"]) / 100, atol=1e-6)
    np.testing.assert_allclose(j["right_knee"], expected_tpose_cm(["Hips", "UpperLeg_R", "LowerLeg_R"]) / 100,
                               atol=1e-6)
    np.testing.assert_allclose(j["left_ankle"], expected_tpose_cm(["Hips", "UpperLeg_L", "LowerLeg_L", "Foot_L"])
                               / 100, atol=1e-6)
    np.testing.assert_allclose(j["left_shoulder"], expected_tpose_cm(["Hips", "Spine", "Chest", "Shoulder_L",
                                                                      "UpperArm_L"]) / 100, atol=1e-6)
    np.testing.assert_allclose(j["right_wrist"], expected_tpose_cm(["Hips", "Spine", "Chest", "Shoulder_R",
                                                                    "UpperArm_R", "LowerArm_R", "Hand_R"]) / 100,
                               atol=1e-6)
    np.testing.assert_allclose(j["nose"], expected_tpose_cm(["Hips", "Spine", "Chest", "Neck", "Head"]) / 100,
                               atol=1e-6)
    # the root walks 1 cm per frame along +Z
    np.testing.assert_allclose(seq.joints[4, JOINT_INDEX["left_hip"]] - seq.joints[0, JOINT_INDEX["left_hip"]],
                               [0, 0, 0.04], atol=1e-6)


def test_humanoid_metadata_derived_and_missing_joints(tmp_path):
    seq = read_bvh(write(tmp_path, humanoid_bvh()))
    assert seq.metadata["derived_joints"] == ["nose"]
    assert set(seq.metadata["missing_joints"]) == {"left_eye", "right_eye", "left_ear", "right_ear"}
    for name in ("left_eye", "right_eye", "left_ear", "right_ear"):
        assert (seq.confidence[:, JOINT_INDEX[name]] == 0).all()
        assert (seq.joints[:, JOINT_INDEX[name]] == 0).all()
    assert (seq.confidence[:, JOINT_INDEX["left_knee"]] == 1).all()
    assert seq.metadata["joint_sources"]["left_knee"] == "LowerLeg_L"
    assert seq.fps == 30.0 and seq.name == "take" and seq.source.endswith("take.bvh")


def test_units_auto_detect_metres_and_explicit_scale(tmp_path):
    cm = read_bvh(write(tmp_path, humanoid_bvh(unit=1.0), "cm.bvh"))
    m = read_bvh(write(tmp_path, humanoid_bvh(unit=0.01), "m.bvh"))
    assert m.metadata["units_scale"] == 1.0
    np.testing.assert_allclose(cm.joints, m.joints, atol=1e-6)
    forced = read_bvh(write(tmp_path, humanoid_bvh(unit=1.0), "cm.bvh"), scale=1.0)
    np.testing.assert_allclose(forced.joints, cm.joints * 100, atol=1e-4)


def test_dispatch_reads_bvh_case_insensitive_suffix(tmp_path):
    [seq] = read_pose_file(write(tmp_path, humanoid_bvh(), "TAKE.BVH"))
    assert seq.num_joints == NUM_JOINTS and seq.dims == 3


def test_skeleton_without_shoulders_is_refused(tmp_path):
    text = humanoid_bvh(skip=("Shoulder_L", "Shoulder_R"))
    with pytest.raises(PoseDataError, match="left_shoulder"):
        read_bvh(write(tmp_path, text))


# --- bad input -------------------------------------------------------------------------------------

GOOD = chain_bvh("Zrotation Xrotation Yrotation", [[0] * 9, [1] * 9, [2] * 9])


def _replace_motion(frames_line: str = "Frames: 3", time_line: str = "Frame Time: 0.0333333",
                    rows: str = "0 0 0 0 0 0 0 0 0\n1 1 1 1 1 1 1 1 1\n2 2 2 2 2 2 2 2 2") -> str:
    return GOOD[:GOOD.index("MOTION")] + f"MOTION\n{frames_line}\n{time_line}\n{rows}\n"


BAD_BVH = {
    "not_bvh": ("hello world\n", "HIERARCHY"),
    "no_motion": (GOOD[:GOOD.index("MOTION")], "MOTION"),
    "truncated_hierarchy": (GOOD[:GOOD.index("End Site")], "MOTION"),
    "unclosed_joint": (GOOD.replace("  }\n}\nMOTION", "  }\nMOTION"), "never closed"),
    "unbalanced_brace": (GOOD.replace("}\nMOTION", "}\n}\nMOTION"), "unbalanced"),
    "truncated_motion": (_replace_motion(rows="0 0 0 0 0 0 0 0 0\n1 1 1 1 1 1 1 1 1"), "truncated"),
    "short_frame": (_replace_motion(rows="0 0 0 0 0 0 0 0 0\n1 1 1 1 1 1 1 1\n2 2 2 2 2 2 2 2 2"),
                    "frame 1 has 8 values, expected 9"),
    "extra_lines": (_replace_motion(rows="0 0 0 0 0 0 0 0 0\n" * 4), "4 lines"),
    "nan_value": (_replace_motion(rows="0 0 0 0 0 0 0 0 0\n1 1 1 nan 1 1 1 1 1\n2 2 2 2 2 2 2 2 2"),
                  "frame 1 contains NaN"),
    "inf_value": (_replace_motion(rows="0 0 0 0 0 0 0 0 0\n1 1 1 1 1 1 1 1 1\n2 2 inf 2 2 2 2 2 2"),
                  "frame 2 contains NaN or inf"),
    "non_numeric": (_replace_motion(rows="0 0 0 0 0 0 0 0 0\n1 1 1 1 x1 1 1 1 1\n2 2 2 2 2 2 2 2 2"),
                    "non-numeric value 'x1'"),
    "zero_frames": (_replace_motion(frames_line="Frames: 0", rows=""), "zero frames"),
    "huge_frame_count": (_replace_motion(frames_line="Frames: 99999999"), "over the limit"),
    "bad_frame_count": (_replace_motion(frames_line="Frames: three"), "whole number"),
    "missing_frames_line": (_replace_motion(frames_line=""), "Frames"),
    "zero_frame_time": (_replace_motion(time_line="Frame Time: 0"), "positive"),
    "bad_frame_time": (_replace_motion(time_line="Frame Time: fast"), "not a number"),
    "unknown_channel": (GOOD.replace("Zrotation Xrotation Yrotation", "Zrotation Wrotation Yrotation"),
                        "unknown channel name 'Wrotation'"),
    "channel_count": (GOOD.replace("CHANNELS 3", "CHANNELS 7"), "0..6"),
    "duplicate_channel": (GOOD.replace("Zrotation Xrotation Yrotation", "Zrotation Zrotation Yrotation"),
                          "listed twice"),
    "bad_offset": (GOOD.replace("OFFSET 1.0 0.0 0.0", "OFFSET 1.0 abc 0.0"), "non-numeric value 'abc'"),
    "nan_offset": (GOOD.replace("OFFSET 1.0 0.0 0.0", "OFFSET 1.0 nan 0.0"), "NaN"),
    "duplicate_name": (GOOD.replace("JOINT Arm", "JOINT Base"), "duplicate joint name"),
    "stray_token": (GOOD.replace("JOINT Arm", "BONE Arm"), "unexpected 'BONE'"),
    "end_site_outside": ("HIERARCHY\nEnd Site\n{\nOFFSET 0 0 0\n}\n" + GOOD[GOOD.index("MOTION"):], "outside"),
    "no_joints": ("HIERARCHY\n" + GOOD[GOOD.index("MOTION"):], "no joints"),
}


@pytest.mark.parametrize("case", sorted(BAD_BVH))
def test_bad_bvh_gives_one_line_pose_data_error(tmp_path, case):
    text, fragment = BAD_BVH[case]
    path = write(tmp_path, text, f"bad_{case}.bvh")
    with pytest.raises(PoseDataError) as info:
        read_bvh_full(path)
    message = str(info.value)
    assert f"bad_{case}.bvh" in message
    assert fragment in message
    assert "\n" not in message


def test_bad_bytes_and_empty_file(tmp_path):
    binary = tmp_path / "binary.bvh"
    binary.write_bytes(bytes(range(256)) * 4)
    empty = tmp_path / "empty.bvh"
    empty.write_bytes(b"")
    for path in (binary, empty, tmp_path / "absent.bvh"):
        with pytest.raises(PoseDataError, match=path.name):
            read_bvh(path)


def test_oversized_file_refused_before_reading(tmp_path):
    from encoder.data.readers import ReaderLimits
    with pytest.raises(PoseDataError, match="over the 100 bytes limit"):
        read_bvh(write(tmp_path, GOOD, "big.bvh"), limits=ReaderLimits(max_text_bytes=100))


def test_too_many_joints_refused(tmp_path):
    depth = 501
    lines = ["HIERARCHY"]
    for i in range(depth):
        lines += [f"{'ROOT' if i == 0 else 'JOINT'} J{i}", "{", "OFFSET 0 1 0", "CHANNELS 1 Zrotation"]
    lines += ["}"] * depth
    text = "\n".join(lines) + "\n" + motion([[0.0] * depth])
    with pytest.raises(PoseDataError, match="more than 500 joints"):
        read_bvh_full(write(tmp_path, text, "deep.bvh"))


def test_deep_but_legal_chain_reads(tmp_path):
    depth = 200
    lines = ["HIERARCHY"]
    for i in range(depth):
        lines += [f"{'ROOT' if i == 0 else 'JOINT'} J{i}", "{", "OFFSET 0 0.01 0", "CHANNELS 1 Zrotation"]
    lines += ["}"] * depth
    names, parents, positions, _ = read_bvh_full(write(tmp_path, "\n".join(lines) + "\n" + motion([[0.0] * depth])))
    assert len(names) == depth and parents[-1] == depth - 2
    assert positions[0, -1, 1] == pytest.approx(0.01 * depth)   # the root's offset places it
