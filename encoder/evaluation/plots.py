"""Report figures: the confusion matrix and a 2D map of the test embeddings coloured by style.

Figures are drawn with matplotlib's object API on an Agg canvas (no global pyplot state, no
display needed). The map is UMAP (umap-learn, cosine metric, fixed ``random_state``); with too
few points for UMAP it falls back to PCA, and with fewer than 3 points to a labelled blank.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

UMAP_MIN_POINTS = 10       # below this UMAP's neighbour graph is degenerate: PCA is used instead
UMAP_RANDOM_STATE = 42
UMAP_NEIGHBOURS = 15
EXACT_KNN_MAX_POINTS = 50_000  # above, UMAP's approximate neighbour search is cheaper than brute force


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path,
                   title: str = "Confusion matrix (rows: true, columns: predicted)") -> Path:
    """Row-normalised confusion heat map with the raw counts written in each cell."""
    m = np.asarray(matrix, dtype=np.float64)
    rows = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    size = max(4.0, 0.6 * len(labels) + 2.0)
    fig = Figure(figsize=(size + 1.0, size))
    ax = fig.add_subplot()
    image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=8,
                    color="white" if frac[i, j] > 0.5 else "black")
    return _save(fig, Path(path))


def _exact_cosine_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, None]:
    """Each point's ``k`` nearest neighbours by cosine distance (itself first), in UMAP's
    ``precomputed_knn`` form. Brute force in scikit-learn's chunked BLAS path: on a few thousand
    points UMAP's own small-data path calls a Python distance per pair (about 20 s at 3000)."""
    from sklearn.neighbors import NearestNeighbors

    distances, indices = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(x).kneighbors(x)
    return indices.astype(np.int32), np.maximum(distances, 0.0).astype(np.float32), None


def embedding_map(embeddings: np.ndarray, random_state: int = UMAP_RANDOM_STATE) -> tuple[np.ndarray, str]:
    """2D coordinates of the embeddings and the method used (``umap``, ``pca`` or ``none``)."""
    x = np.asarray(embeddings, dtype=np.float64)
    n = x.shape[0]
    if n < 3:
        return np.zeros((n, 2)), "none"
    if n >= UMAP_MIN_POINTS:
        try:
            import umap  # imported here: it takes seconds (numba) and only this figure needs it

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                k = min(UMAP_NEIGHBOURS, n - 1)
                reducer = umap.UMAP(n_components=2, n_neighbors=k, metric="cosine", random_state=random_state,
                                    init="spectral" if n > 20 else "random",
                                    precomputed_knn=_exact_cosine_knn(x, k) if n <= EXACT_KNN_MAX_POINTS
                                    else (None, None, None))
                return np.asarray(reducer.fit_transform(x)), "umap"
        except Exception as err:  # umap-learn missing or failing on odd input: PCA still shows the data
            warnings.warn(f"UMAP failed ({type(err).__name__}: {err}); using PCA for the embedding map",
                          stacklevel=2)
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords, "pca"


def compile_map_kernels() -> None:
    """Draw one small map so numba compiles UMAP's kernels and caches them on disk (``make install``
    runs this): on a fresh install the first real map otherwise spends about 18 s compiling."""
    points = np.random.default_rng(0).normal(size=(UMAP_MIN_POINTS * 30, 128))
    embedding_map(points / np.linalg.norm(points, axis=1, keepdims=True))


def plot_embedding_map(embeddings: np.ndarray, labels: Sequence[str], path: str | Path,
                       title: str = "Test embeddings", random_state: int = UMAP_RANDOM_STATE) -> tuple[Path, str]:
    """Scatter of the UMAP (or PCA fallback) of the embeddings, one colour per style."""
    coords, method = embedding_map(embeddings, random_state)
    labels = [str(x) for x in labels]
    fig = Figure(figsize=(7.0, 6.0))
    ax = fig.add_subplot()
    if method == "none":
        ax.text(0.5, 0.5, f"too few points for a map ({len(labels)})", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
    else:
        names = sorted(set(labels))
        cmap = _colours(len(names))
        arr = np.asarray(labels)
        for i, name in enumerate(names):
            sel = arr == name
            ax.scatter(coords[sel, 0], coords[sel, 1], s=18, color=cmap[i], label=f"{name} ({int(sel.sum())})",
                       alpha=0.85, edgecolors="none")
        ax.legend(fontsize=8, markerscale=1.5, loc="best", frameon=False)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(f"{title} ({method.upper()}, coloured by style)", fontsize=10)
    return _save(fig, Path(path)), method


def _colours(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
