"""The app's figures: stick figures drawn alike in a row (scale from the body, not the box) with no
joint left hanging, explanation bars never hairline-thin, the map's groups in clearly different hues."""
from __future__ import annotations

import colorsys
import io
from dataclasses import replace
from itertools import combinations

import numpy as np
from PIL import Image
from scipy import ndimage

from app.services.analysis import motion_view
from app.ui import figures
from encoder.data.demo import generate_demo_corpus
from encoder.data.skeleton import JOINT_INDEX


def _walk(index: int = 0):
    return generate_demo_corpus(index + 1, seed=3, views=("2d",), progress=False)[index]


def _frame(motion, t: int = 0) -> np.ndarray:
    """Frame ``t`` of the stick-figure GIF as a boolean mask of figure pixels (ground line excluded)."""
    image = Image.open(io.BytesIO(figures.skeleton_gif(motion)))
    image.seek(t)
    rgb = np.asarray(image.convert("RGB")).astype(int)
    ink = (rgb.sum(axis=-1) < 600)            # bones and joints; the ground line is light grey
    return ink


def _height_px(mask: np.ndarray) -> int:
    rows = np.flatnonzero(mask.any(axis=1))
    return int(rows[-1] - rows[0])


def test_figures_in_a_row_share_a_scale_whatever_the_reach_of_a_limb() -> None:
    motion = motion_view(_walk())
    reach = motion.drawing.copy()
    reach[1:, JOINT_INDEX["left_wrist"], 0] += 3.0 * np.nanmax(np.abs(reach[..., 0]))   # an arm flung far out
    reaching = replace(motion, drawing=reach)
    assert abs(_height_px(_frame(motion)) - _height_px(_frame(reaching))) <= 2


def test_figures_of_different_sizes_and_units_are_drawn_at_one_body_height() -> None:
    near, far = motion_view(_walk(0)), motion_view(_walk(1))
    far = replace(far, drawing=far.drawing * 0.3)             # a walker three times farther from the camera
    heights = [_height_px(_frame(m, 5)) for m in (near, far)]
    assert abs(heights[0] - heights[1]) <= 0.1 * max(heights), heights
    assert heights[0] > 0.5 * figures.GIF_SIZE[1]


def test_a_dropped_keypoint_leaves_no_detached_joint() -> None:
    motion = motion_view(_walk())
    drawing = motion.drawing.copy()
    drawing[0, JOINT_INDEX["left_knee"]] = np.nan             # dropped in this frame (BENCHMARK.md dropout)
    drawing[0, JOINT_INDEX["right_elbow"]] = np.nan
    _, parts = ndimage.label(_frame(replace(motion, drawing=drawing), 0), structure=np.ones((3, 3)))
    assert parts == 1


def test_segment_bars_have_a_visible_width_however_close_the_windows() -> None:
    fig = figures.segment_weight_figure(np.array([0.100, 0.101, 0.5, 0.9]), np.array([0.4, 0.3, 0.2, 0.1]), "w")
    bar = fig.data[0]
    assert bar.width == figures.BAR_WIDTH >= 0.5
    assert list(bar.x) == [1, 2, 3, 4]                         # one slot per window, evenly spaced


def _hue_deg(colour: str) -> float:
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 360.0 * colorsys.rgb_to_hsv(r, g, b)[0]


def test_map_groups_get_clearly_different_hues() -> None:
    for n in (6, 7, 12, 30):
        hues = [_hue_deg(c) for c in figures.group_colours(n)]
        gaps = [min(abs(a - b), 360 - abs(a - b)) for a, b in combinations(hues, 2)]
        assert min(gaps) >= min(30.0, 0.9 * 360 / n), (n, sorted(hues))
    rows = [{"id": f"s{i}", "x": float(i), "y": float(i % 3), "label": f"style{i % 6}", "collection": "c",
             "season": "s", "tags": "", "method": "umap"} for i in range(24)]
    fig = figures.embedding_scatter(rows, "label")
    colours = [trace.marker.color for trace in fig.data]
    assert len(colours) == 6 and len(set(colours)) == 6 and None not in colours
