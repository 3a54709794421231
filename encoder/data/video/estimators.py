"""The pose-estimator interface: one function from RGB frames to each frame's people (keypoints and
scores). Estimators are registered by name, so another offline estimator plugs in without touching
ingest or search; the keypoint count picks the source skeleton (17 COCO, 18/25 OpenPose, 33 MediaPipe).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from encoder.data.video.options import DEFAULT_ESTIMATOR

# One person in one frame: (S, 2) pixel keypoints (x right, y down) and (S,) scores in [0, 1].
PersonKeypoints = tuple[np.ndarray, np.ndarray]
# frames (H, W, 3) uint8 RGB, in clip order -> per frame, the people found (possibly none).
EstimateFn = Callable[[Iterable[np.ndarray]], Iterator[list[PersonKeypoints]]]


@dataclass(frozen=True)
class PoseEstimator:
    """A named estimator; ``estimate`` is called once per clip with its frames in order."""

    name: str
    estimate: EstimateFn


_FACTORIES: dict[str, Callable[[], PoseEstimator]] = {}


def register_estimator(name: str, factory: Callable[[], PoseEstimator]) -> None:
    """Make ``factory`` available as ``name`` (the factory imports its heavy library only when called)."""
    _FACTORIES[name] = factory


def estimator_names() -> list[str]:
    return sorted(_FACTORIES)


def get_estimator(name: str = DEFAULT_ESTIMATOR) -> PoseEstimator:
    """The registered estimator ``name``; ``KeyError`` names the known ones."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise KeyError(f"unknown pose estimator {name!r}; known: {', '.join(estimator_names())}") from None
    return factory()


def _mediapipe() -> PoseEstimator:
    from encoder.data.video.mediapipe_pose import mediapipe_estimator

    return mediapipe_estimator()


register_estimator("mediapipe", _mediapipe)
