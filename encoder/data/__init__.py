"""encoder.data: pose sequences, readers, preprocessing, virtual cameras, the demo corpus and the dataset cache."""
from __future__ import annotations

from encoder.data.batch import PoseBatch, SegmentedSequence, collate_segments
from encoder.data.camera import (
    CameraParams, add_keypoint_jitter, benchmark_2d_view, benchmark_camera, drop_joints, project_points,
    random_2d_view,
)
from encoder.data.dataset import (
    DatasetCache, DatasetItem, IngestError, IngestReport, dataset_version, discover_inputs, ingest,
)
from encoder.data.demo import STYLE_CLASSES, generate_demo_corpus, write_demo_corpus
from encoder.data.errors import PoseDataError
from encoder.data.labels import CsvLabels, LabelInfo, LabelSource, PatternLabels, preset_labels
from encoder.data.preprocess import (
    PreprocessConfig, align_heading, clean_low_confidence, joint_velocities, normalize_center_scale,
    preprocess_many, preprocess_sequence, resample_fps, segment_windows, velocity_weighted_adjacency,
)
from encoder.data.readers import SUPPORTED_SUFFIXES, read_bvh, read_pose_file
from encoder.data.sequence import PoseSequence
from encoder.data.skeleton import (
    BODY_REGIONS, CANONICAL_SKELETON, COCO17_EDGES, COCO17_JOINTS, JOINT_INDEX, MIRROR_PERMUTATION,
    NUM_JOINTS, SKELETON_MAPPINGS, SkeletonMapping, adjacency_matrix, bvh_joint_lookup,
)

__all__ = [
    # skeleton
    "BODY_REGIONS", "CANONICAL_SKELETON", "COCO17_EDGES", "COCO17_JOINTS", "JOINT_INDEX", "MIRROR_PERMUTATION",
    "NUM_JOINTS", "SKELETON_MAPPINGS", "SkeletonMapping", "adjacency_matrix", "bvh_joint_lookup",
    # sequence, errors, batch
    "PoseSequence", "PoseDataError", "PoseBatch", "SegmentedSequence", "collate_segments",
    # readers
    "SUPPORTED_SUFFIXES", "read_bvh", "read_pose_file",
    # preprocess
    "PreprocessConfig", "align_heading", "clean_low_confidence", "joint_velocities", "normalize_center_scale",
    "preprocess_many", "preprocess_sequence", "resample_fps", "segment_windows", "velocity_weighted_adjacency",
    # camera
    "CameraParams", "add_keypoint_jitter", "benchmark_2d_view", "benchmark_camera", "drop_joints",
    "project_points", "random_2d_view",
    # demo
    "STYLE_CLASSES", "generate_demo_corpus", "write_demo_corpus",
    # labels and dataset cache
    "CsvLabels", "LabelInfo", "LabelSource", "PatternLabels", "preset_labels",
    "DatasetCache", "DatasetItem", "IngestError", "IngestReport", "dataset_version", "discover_inputs", "ingest",
]
