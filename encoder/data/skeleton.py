"""The canonical body skeleton (COCO-17 joint order) and mapping tables onto it.

Every reader maps its source skeleton onto COCO-17. A canonical joint the source lacks is
either *derived* from other source joints (listed in ``DERIVED``) or left with confidence 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COCO17_JOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
CANONICAL_SKELETON = "coco17"
NUM_JOINTS = len(COCO17_JOINTS)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(COCO17_JOINTS)}

# Bones of the canonical skeleton (undirected), as used by COCO keypoint visualisers.
COCO17_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4),            # face
    (0, 5), (0, 6),                            # head to shoulders
    (5, 6), (5, 11), (6, 12), (11, 12),        # torso
    (5, 7), (7, 9), (6, 8), (8, 10),           # arms
    (11, 13), (13, 15), (12, 14), (14, 16),    # legs
)

# Functional body regions (paper section 3.3, eq. 8): shoulder/hip linkage, arm swing, legs.
BODY_REGIONS: dict[str, tuple[int, ...]] = {
    "head": (0, 1, 2, 3, 4),
    "torso": (5, 6, 11, 12),
    "left_arm": (5, 7, 9),
    "right_arm": (6, 8, 10),
    "left_leg": (11, 13, 15),
    "right_leg": (12, 14, 16),
}

# Left/right joint pairs, for mirroring augmentation.
LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
)
MIRROR_PERMUTATION: tuple[int, ...] = tuple(
    next((b if j == a else a for a, b in LEFT_RIGHT_PAIRS if j in (a, b)), j)
    for j in range(NUM_JOINTS)
)

LEFT_HIP, RIGHT_HIP = JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"]
# Shoulders and hips: the body centre that graph partitions measure hop distance from.
TORSO_JOINTS: tuple[int, ...] = tuple(
    JOINT_INDEX[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))


def adjacency_matrix(edges: tuple[tuple[int, int], ...] = COCO17_EDGES,
                     num_joints: int = NUM_JOINTS, self_loops: bool = False) -> np.ndarray:
    """Binary symmetric skeleton adjacency G(i, j) of eq. (3)."""
    g = np.zeros((num_joints, num_joints), dtype=np.float32)
    for i, j in edges:
        g[i, j] = g[j, i] = 1.0
    if self_loops:
        np.fill_diagonal(g, 1.0)
    return g


@dataclass(frozen=True)
class SkeletonMapping:
    """How a source skeleton maps onto COCO-17.

    ``sources[k]`` lists the source joint names (or indices) whose mean gives canonical joint k;
    an empty tuple means the source lacks that joint (confidence 0). ``derived`` names the
    canonical joints computed from other source joints rather than observed directly.
    """

    name: str
    sources: tuple[tuple[str | int, ...], ...]
    derived: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if len(self.sources) != NUM_JOINTS:
            raise ValueError(f"mapping {self.name}: needs {NUM_JOINTS} entries, got {len(self.sources)}")

    def apply(self, joints: np.ndarray, confidence: np.ndarray,
              index: dict[str | int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Map (T, S, C) source joints + (T, S) confidence onto (T, 17, C) and (T, 17).

        A derived joint (mean of several sources) takes the minimum confidence of its sources.
        """
        t, _, c = joints.shape
        out = np.zeros((t, NUM_JOINTS, c), dtype=np.float32)
        conf = np.zeros((t, NUM_JOINTS), dtype=np.float32)
        for k, srcs in enumerate(self.sources):
            if not srcs:
                continue
            idx = [index[s] if index is not None else int(s) for s in srcs]
            out[:, k] = joints[:, idx].mean(axis=1)
            conf[:, k] = confidence[:, idx].min(axis=1)
        return out, conf


def _identity(name: str) -> SkeletonMapping:
    return SkeletonMapping(name, tuple((i,) for i in range(NUM_JOINTS)))


# COCO-17 as written by MMPose, RTMPose (body) and YOLO-pose: already canonical.
COCO17_MAPPING = _identity("coco17")

# OpenPose BODY_25: 0 Nose 1 Neck 2 RShoulder 3 RElbow 4 RWrist 5 LShoulder 6 LElbow 7 LWrist
# 8 MidHip 9 RHip 10 RKnee 11 RAnkle 12 LHip 13 LKnee 14 LAnkle 15 REye 16 LEye 17 REar 18 LEar
# 19 LBigToe 20 LSmallToe 21 LHeel 22 RBigToe 23 RSmallToe 24 RHeel
BODY25_MAPPING = SkeletonMapping("body25", (
    (0,), (16,), (15,), (18,), (17,),
    (5,), (2,), (6,), (3,), (7,), (4,),
    (12,), (9,), (13,), (10,), (14,), (11,),
))

# OpenPose COCO-18 (BODY_18): same as BODY_25's first 18 minus MidHip shifting the hips.
# 0 Nose 1 Neck 2 RSho 3 RElb 4 RWri 5 LSho 6 LElb 7 LWri 8 RHip 9 RKnee 10 RAnk 11 LHip
# 12 LKnee 13 LAnk 14 REye 15 LEye 16 REar 17 LEar
BODY18_MAPPING = SkeletonMapping("body18", (
    (0,), (15,), (14,), (17,), (16,),
    (5,), (2,), (6,), (3,), (7,), (4,),
    (11,), (8,), (12,), (9,), (13,), (10,),
))

# MediaPipe Pose 33: 0 nose, 2 left_eye, 5 right_eye, 7 left_ear, 8 right_ear, 11/12 shoulders,
# 13/14 elbows, 15/16 wrists, 23/24 hips, 25/26 knees, 27/28 ankles.
MEDIAPIPE33_MAPPING = SkeletonMapping("mediapipe33", (
    (0,), (2,), (5,), (7,), (8,),
    (11,), (12,), (13,), (14,), (15,), (16,),
    (23,), (24,), (25,), (26,), (27,), (28,),
))

# BVH skeletons are matched by joint name (case-insensitive, separators ignored). Each canonical
# joint lists candidate names in order of preference; the first present in the file wins.
# The nose has no mocap marker: it is derived from the head joint (documented in DERIVED).
BVH_NAME_CANDIDATES: dict[str, tuple[str, ...]] = {
    "nose": ("nose", "head", "headtop_end", "head_end"),
    "left_eye": ("lefteye", "eye_l", "l_eye"),
    "right_eye": ("righteye", "eye_r", "r_eye"),
    "left_ear": ("leftear", "ear_l", "l_ear"),
    "right_ear": ("rightear", "ear_r", "r_ear"),
    # Bandai-Namco names the upper arm joint (the gleno-humeral joint) UpperArm_L; its Shoulder_L
    # is the clavicle. CMU names: LeftArm / LeftForeArm / LeftHand; Mixamo adds a mixamorig: prefix.
    "left_shoulder": ("upperarm_l", "leftarm", "lshoulder", "leftshoulder", "l_shoulder", "shoulder_l"),
    "right_shoulder": ("upperarm_r", "rightarm", "rshoulder", "rightshoulder", "r_shoulder", "shoulder_r"),
    "left_elbow": ("lowerarm_l", "leftforearm", "lelbow", "leftelbow", "l_elbow", "forearm_l"),
    "right_elbow": ("lowerarm_r", "rightforearm", "relbow", "rightelbow", "r_elbow", "forearm_r"),
    "left_wrist": ("hand_l", "lefthand", "lwrist", "leftwrist", "l_wrist", "l_hand"),
    "right_wrist": ("hand_r", "righthand", "rwrist", "rightwrist", "r_wrist", "r_hand"),
    "left_hip": ("upperleg_l", "leftupleg", "lhip", "lefthip", "l_hip", "lthigh", "leftthigh", "thigh_l"),
    "right_hip": ("upperleg_r", "rightupleg", "rhip", "righthip", "r_hip", "rthigh", "rightthigh", "thigh_r"),
    "left_knee": ("lowerleg_l", "leftleg", "lknee", "leftknee", "l_knee", "lshin", "leftshin", "calf_l"),
    "right_knee": ("lowerleg_r", "rightleg", "rknee", "rightknee", "r_knee", "rshin", "rightshin", "calf_r"),
    "left_ankle": ("foot_l", "leftfoot", "lankle", "leftankle", "l_ankle", "l_foot"),
    "right_ankle": ("foot_r", "rightfoot", "rankle", "rightankle", "r_ankle", "r_foot"),
}
BVH_DERIVED: frozenset[str] = frozenset({"nose"})

SKELETON_MAPPINGS: dict[str, SkeletonMapping] = {
    m.name: m for m in (COCO17_MAPPING, BODY25_MAPPING, BODY18_MAPPING, MEDIAPIPE33_MAPPING)
}
SOURCE_JOINT_COUNTS: dict[int, str] = {17: "coco17", 25: "body25", 18: "body18", 33: "mediapipe33"}


def normalize_joint_name(name: str) -> str:
    """Lower-case a BVH joint name and drop namespace prefixes and separators."""
    name = name.split(":")[-1].lower()
    return name.replace(" ", "").replace("-", "").replace(".", "")


def bvh_joint_lookup(joint_names: list[str]) -> dict[str, int]:
    """For each canonical joint, the index of the BVH joint that supplies it (absent: missing).

    Matching ignores case, namespaces (``mixamorig:``) and separators, so ``UpperArm_L``,
    ``LeftArm`` and ``mixamorig:LeftArm`` all resolve.
    """
    norm = {normalize_joint_name(n): i for i, n in enumerate(joint_names)}
    norm_nosep = {k.replace("_", ""): i for k, i in norm.items()}
    found: dict[str, int] = {}
    for canon, candidates in BVH_NAME_CANDIDATES.items():
        for cand in candidates:
            if cand in norm:
                found[canon] = norm[cand]
                break
            if cand.replace("_", "") in norm_nosep:
                found[canon] = norm_nosep[cand.replace("_", "")]
                break
    return found
