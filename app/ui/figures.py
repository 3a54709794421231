"""Figures of the app: animated stick figures (GIF), joint trajectories, explanation bars, the style
map, the confusion matrix. Pure presentation: every number comes from ``app.services.analysis``."""
from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw
from plotly.subplots import make_subplots

from app.services.analysis import MotionView
from encoder.data.skeleton import COCO17_EDGES, COCO17_JOINTS, LEFT_RIGHT_PAIRS
from encoder.evaluation.results import ClassScores

GIF_SIZE = (160, 200)          # width, height in pixels
GIF_MAX_FRAMES = 60
GIF_PLAYBACK_FPS = 15
_LEFT = {a for a, _ in LEFT_RIGHT_PAIRS}
_RIGHT = {b for _, b in LEFT_RIGHT_PAIRS}
_COLOURS = {"left": (31, 119, 180), "right": (214, 39, 40), "centre": (90, 90, 90)}
TRAJECTORY_JOINTS = ("left_wrist", "right_wrist", "left_ankle", "right_ankle")
BAR_WIDTH = 0.8                # of the space between bars
# Six Tableau 10 colours whose hues differ by >= 30 degrees (the six styles); more groups get evenly
# spaced hues.
GROUP_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2")
FIGURE_BODY_FRACTION = 0.62    # the body's median height as a fraction of the GIF height, for every figure
GROUND_FRACTION = 0.88         # where the feet stand, from the top of the GIF


def group_colours(n: int) -> list[str]:
    """``n`` colours of clearly different hue (the map's styles, collections, clusters)."""
    if n <= len(GROUP_COLOURS):
        return list(GROUP_COLOURS[:n])
    import colorsys

    return ["#%02x%02x%02x" % tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / n, 0.65, 0.85))
            for i in range(n)]


def _bone_colour(i: int, j: int) -> tuple[int, int, int]:
    if i in _LEFT and j in _LEFT:
        return _COLOURS["left"]
    if i in _RIGHT and j in _RIGHT:
        return _COLOURS["right"]
    return _COLOURS["centre"]


def fill_gaps(drawing: np.ndarray) -> np.ndarray:
    """(T, J, 2) drawing with each joint's missing frames interpolated from its observed ones (held at
    the ends), so dropped keypoints do not blink or leave bones hanging; never-seen joints stay NaN."""
    out = np.array(drawing, dtype=np.float64, copy=True)
    t = np.arange(out.shape[0])
    for j in range(out.shape[1]):
        seen = np.isfinite(out[:, j]).all(axis=-1)
        if seen.any() and not seen.all():
            for c in range(out.shape[2]):
                out[~seen, j, c] = np.interp(t[~seen], t[seen], out[seen, j, c])
    return out


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Moving average over ``window`` frames (edges padded), NaN-free input."""
    if window <= 1 or len(values) < 2:
        return values
    padded = np.pad(values, (window // 2, window - 1 - window // 2), mode="edge")
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def figure_pixels(drawing: np.ndarray, fps: float, size: tuple[int, int] = GIF_SIZE) -> np.ndarray:
    """(T, J, 2) pixel positions of a gap-filled drawing: the body's height (its extent over about a
    second, so the bob within a step stays) fills the same fraction of every image and the feet stand
    on one ground line, so figures side by side share one scale whatever their units, the camera's
    distance, a walk toward the camera or the reach of a limb; the mid-hip is centred."""
    width, height = size
    vertical = drawing[..., 1]
    seen = np.isfinite(vertical).any(axis=1)
    pixels = np.full(drawing.shape, np.nan)
    if not seen.any():
        return pixels
    frames = np.flatnonzero(seen)
    tops = np.interp(np.arange(len(drawing)), frames, np.nanmax(vertical[seen], axis=1))
    bottoms = np.interp(np.arange(len(drawing)), frames, np.nanmin(vertical[seen], axis=1))
    window = max(1, int(round(fps))) if fps > 0 else 1
    body = np.maximum(_smooth(tops - bottoms, window), 1e-9)
    ground = _smooth(bottoms, window)
    scale = FIGURE_BODY_FRACTION * height / body                       # pixels per unit, per frame
    pixels[..., 0] = width / 2.0 + drawing[..., 0] * scale[:, None]
    pixels[..., 1] = GROUND_FRACTION * height - (drawing[..., 1] - ground[:, None]) * scale[:, None]
    return pixels


def skeleton_gif(motion: MotionView, size: tuple[int, int] = GIF_SIZE, max_frames: int = GIF_MAX_FRAMES) -> bytes:
    """An animated GIF of the COCO-17 stick figure (left side blue, right red), looping.

    Frames are subsampled to at most ``max_frames`` and played at ``GIF_PLAYBACK_FPS``; the scale
    comes from the body's height (``figure_pixels``), so all figures are drawn alike; a joint is
    drawn only with a bone that reaches it."""
    width, height = size
    pixels = figure_pixels(fill_gaps(motion.drawing), motion.fps, size)
    step = max(1, int(np.ceil(motion.num_frames / max_frames)))
    frames = np.arange(0, motion.num_frames, step)
    ground = GROUND_FRACTION * height
    drawn = np.isfinite(pixels[frames]).all(axis=-1).any(axis=-1)
    frames = frames[drawn] if drawn.any() else frames          # no blank frames (a clip's person may come later)
    images = []
    for t in frames:
        image = Image.new("RGB", (width, height), (255, 255, 255))
        pen = ImageDraw.Draw(image)
        points = pixels[t]
        ok = np.isfinite(points).all(axis=-1)
        pen.line([(0, ground), (width, ground)], fill=(220, 220, 220), width=1)
        attached = np.zeros(len(points), dtype=bool)
        for i, j in COCO17_EDGES:
            if ok[i] and ok[j]:
                pen.line([tuple(points[i]), tuple(points[j])], fill=_bone_colour(i, j), width=3)
                attached[[i, j]] = True
        for j in np.flatnonzero(attached):
            x, y = points[j]
            pen.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(40, 40, 40))
        images.append(image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16))
    buffer = io.BytesIO()
    duration = max(20, int(1000 * step / motion.fps)) if motion.fps > 0 else 1000 // GIF_PLAYBACK_FPS
    duration = max(duration, 1000 // GIF_PLAYBACK_FPS)
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0,
                   disposal=2)
    return buffer.getvalue()


def trajectory_figure(query: MotionView, hit: MotionView, joints: Sequence[str], axis: str,
                      query_title: str, hit_title: str) -> go.Figure:
    """Query and hit side by side: the chosen joints' eq. (1)-normalised coordinate on ``axis`` over time."""
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=(query_title, hit_title),
                        horizontal_spacing=0.04)
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
    for col, motion in ((1, query), (2, hit)):
        if axis not in motion.axes:
            continue
        a = motion.axes.index(axis)
        for n, joint in enumerate(joints):
            j = COCO17_JOINTS.index(joint)
            fig.add_trace(go.Scatter(x=motion.times, y=motion.trajectories[:, j, a], mode="lines",
                                     name=joint.replace("_", " "), legendgroup=joint, showlegend=col == 1,
                                     line={"color": palette[n % len(palette)], "width": 2}), row=1, col=col)
        fig.update_xaxes(title_text="time (s)", row=1, col=col)
    fig.update_yaxes(title_text=f"{axis} (body-normalised)", row=1, col=1)
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 60, "b": 10},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def segment_weight_figure(phases: np.ndarray, weights: np.ndarray, title: str) -> go.Figure:
    """Weight of each window in the embedding, one bar per window in sequence order (bars of equal,
    visible width however close the window centres lie; the centre is in the label and the hover)."""
    centres = np.asarray(phases, dtype=np.float64) * 100.0
    number = np.arange(1, len(centres) + 1)
    fig = go.Figure(go.Bar(x=number, y=np.asarray(weights), width=BAR_WIDTH, marker_color="#4c78a8",
                           customdata=centres,
                           hovertemplate="window %{x}, centre %{customdata:.0f}%<br>weight %{y:.3f}<extra></extra>"))
    fig.update_layout(title=title, height=260, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis={"title": "window (centre, % of the sequence)", "tickmode": "array",
                             "tickvals": number.tolist(),
                             "ticktext": [f"{n} ({c:.0f}%)" for n, c in zip(number, centres)]},
                      yaxis_title="weight")
    return fig


def region_weight_figure(regions: Mapping[str, float], title: str) -> go.Figure:
    """Weight of each body region, largest on top."""
    items = sorted(regions.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=[k.replace("_", " ") for k, _ in items], orientation="h",
                           marker_color="#f58518", hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_layout(title=title, height=260, margin={"l": 10, "r": 10, "t": 40, "b": 10}, xaxis_title="weight")
    return fig


def embedding_scatter(rows: Sequence[Mapping[str, Any]], colour_by: str, highlight: str | None = None) -> go.Figure:
    """The 2D style map, one trace per colour group; each point carries its sequence id as customdata."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row[colour_by]), []).append(row)
    fig = go.Figure()
    names = sorted(groups, key=lambda g: (len(g), g) if colour_by == "cluster" else g)
    for name, colour in zip(names, group_colours(len(names))):
        members = groups[name]
        fig.add_trace(go.Scattergl(
            x=[r["x"] for r in members], y=[r["y"] for r in members], mode="markers", name=name,
            marker={"size": 9, "opacity": 0.85, "color": colour},
            customdata=[[r["id"], r["label"], r["collection"], r["season"], r["tags"]] for r in members],
            hovertemplate=("<b>%{customdata[0]}</b><br>style: %{customdata[1]}<br>collection: %{customdata[2]}"
                           "<br>season: %{customdata[3]}<br>tags: %{customdata[4]}<extra></extra>")))
    if highlight is not None:
        chosen = [r for r in rows if r["id"] == highlight]
        if chosen:
            fig.add_trace(go.Scatter(x=[chosen[0]["x"]], y=[chosen[0]["y"]], mode="markers", name="query",
                                     marker={"size": 18, "symbol": "circle-open", "color": "black",
                                             "line": {"width": 2}}, hoverinfo="skip"))
    method = str(rows[0]["method"]).upper() if rows else ""
    fig.update_layout(height=560, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      title=f"{method} of the style embeddings",
                      legend_title_text=colour_by, xaxis={"showticklabels": False}, yaxis={"showticklabels": False},
                      clickmode="event+select", dragmode="pan")
    return fig


def confusion_figure(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> go.Figure:
    """Row-normalised heat map (colour: fraction of the true class) with the counts written in."""
    counts = np.asarray(matrix, dtype=np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    frac = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    names = [str(x).replace("_", " ") for x in labels]
    fig = go.Figure(go.Heatmap(z=frac.tolist(), x=names, y=names, colorscale="Blues", zmin=0, zmax=1,
                               text=counts.astype(int).tolist(), texttemplate="%{text}",
                               colorbar={"title": "fraction"},
                               hovertemplate="true %{y}<br>predicted %{x}<br>count %{text}<extra></extra>"))
    fig.update_layout(height=460, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_title="predicted",
                      yaxis_title="true", yaxis={"autorange": "reversed"})
    return fig


def per_class_figure(per_class: Mapping[str, ClassScores]) -> go.Figure:
    """Precision, recall and F1 of each style, grouped."""
    names = list(per_class)
    fig = go.Figure([go.Bar(name=metric, x=[n.replace("_", " ") for n in names],
                            y=[getattr(per_class[n], metric) for n in names])
                     for metric in ("precision", "recall", "f1")])
    fig.update_layout(barmode="group", height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      yaxis={"range": [0, 1]})
    return fig
