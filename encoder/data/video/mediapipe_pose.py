"""MediaPipe Pose (``mediapipe==0.10.14``, the ``video`` extra) as a ``PoseEstimator``.

Runs offline: ``model_complexity=1`` uses ``pose_landmark_full.tflite``, which the wheel ships
(complexity 0 and 2 would download a model at run time, so they are never used). In video mode
MediaPipe follows one person from frame to frame (it crops each frame around the last pose), so
each frame yields at most that one person; its 33 landmarks map onto COCO-17 (``mediapipe33``).
Per-joint score: the landmark's visibility.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator

import numpy as np

from encoder.data.video.estimators import PersonKeypoints, PoseEstimator

MODEL_COMPLEXITY = 1            # the only bundled landmark model (see module docstring)
MIN_DETECTION_CONFIDENCE = 0.5
MIN_TRACKING_CONFIDENCE = 0.5


def _estimate(frames: Iterable[np.ndarray]) -> Iterator[list[PersonKeypoints]]:
    os.environ.setdefault("GLOG_minloglevel", "2")      # MediaPipe's C++ info lines are noise here
    from mediapipe.python.solutions import pose as mp_pose

    # mediapipe 0.10.14 calls a protobuf API that protobuf 4.25 marks deprecated, once per frame
    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype", category=UserWarning)
    pose = mp_pose.Pose(static_image_mode=False, model_complexity=MODEL_COMPLEXITY, smooth_landmarks=True,
                            enable_segmentation=False, min_detection_confidence=MIN_DETECTION_CONFIDENCE,
                            min_tracking_confidence=MIN_TRACKING_CONFIDENCE)
    with pose:
        for frame in frames:
            height, width = frame.shape[:2]
            result = pose.process(np.ascontiguousarray(frame))
            if result.pose_landmarks is None:
                yield []
                continue
            marks = result.pose_landmarks.landmark
            keypoints = np.array([[m.x * width, m.y * height] for m in marks], dtype=np.float64)
            scores = np.clip(np.array([m.visibility for m in marks], dtype=np.float64), 0.0, 1.0)
            yield [(keypoints, scores)]


def mediapipe_estimator() -> PoseEstimator:
    """The MediaPipe Pose estimator; fails with ``ImportError`` when the video extra is missing."""
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        raise ImportError("pose estimation needs the video extra: pip install 'posestyle[video]'") from None
    return PoseEstimator(name=f"mediapipe-pose-{MODEL_COMPLEXITY}", estimate=_estimate)
