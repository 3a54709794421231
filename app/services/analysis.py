"""App-service facade: what the Streamlit app needs from ``retrieval/`` and ``encoder/``, with no UI code.

- ``AppService`` opens the metadata store and the index manager of a data root and gives the app
  the live index with its encoder (``LiveIndex``), search by indexed sequence or uploaded pose file,
  filter menus, the motion of a stored sequence, the index versions and re-index jobs.
- Derived data per index version: the 2D UMAP layout of the indexed embeddings (computed once and
  stored atomically as ``<root>/cache/umap-<version>.npz``), the style head's predictions over the
  indexed sequences (``<root>/cache/predictions-<version>.npz``), k-means cluster labels, and
  cluster quality computed by ``encoder.evaluation.metrics`` (the numbers ``posestyle evaluate``
  reports for a set of embeddings).
- ``MotionView``: a sequence ready to draw (side-view stick-figure coordinates) and to compare
  (heading-aligned joint trajectories normalised by eq. (1)).
"""
from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from app.services.limits import MAX_UPLOAD_BYTES
from encoder.data.atomic import atomic_write_bytes, atomic_write_npz
from encoder.data.errors import PoseDataError, one_line
from encoder.data.preprocess import align_heading, body_centre, normalize_center_scale
from encoder.data.sequence import PoseSequence
from encoder.data.video import VIDEO_SUFFIXES
from encoder.evaluation.metrics import classification_metrics, cluster_purity, compute_metrics, kmeans_labels
from encoder.evaluation.results import ClassificationMetrics, StyleMetrics
from retrieval.index import IndexManager, VectorSearcher
from retrieval.index.errors import IndexCorruptError, NoLiveIndexError
from retrieval.jobs import JOB_KIND, EmbedRequest, JobError, ReindexJob, SequenceLoader, dataset_for
from retrieval.search import SearchFilters, SearchHit, SearchService, freeze_loaded_objects
from retrieval.store import (
    IndexVersionRecord,
    JobRecord,
    MetadataStore,
    SequenceRecord,
    default_database_url,
)

if TYPE_CHECKING:                       # torch is loaded only when an encoder is
    from encoder.inference import StyleEncoder

log = logging.getLogger(__name__)

CACHE_DIR = "cache"
UPLOAD_SUFFIXES: tuple[str, ...] = (".bvh", ".json", ".npy", ".npz", *VIDEO_SUFFIXES)
FILTER_FIELDS: tuple[str, ...] = ("label", "collection", "season", "tags")
PREDICTION_BATCH = 64
KMEANS_RESTARTS = 10
UNREADABLE_POINTER = "(unreadable LIVE pointer)"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME_CHARS = 100


def build_index_hint(root: str | Path) -> str:
    """The commands that build a live index under ``root`` (shown wherever the app finds none)."""
    return (f"posestyle ingest <pose files> --out <dataset> && posestyle index --data <dataset> "
            f"--checkpoint <encoder.safetensors> --root {root}  (or `make demo` for the demo corpus)")


class NoIndexError(RuntimeError):
    """The data root has no live index yet; ``str(err)`` says which command builds one."""

    def __init__(self, root: str | Path, reason: str = "no live index") -> None:
        self.root = str(root)
        super().__init__(f"{reason} under {root}; build one with: {build_index_hint(root)}")


# -- atomic cache files ---------------------------------------------------------------------------
def _read_npz(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a cache file, or None when it is missing or unreadable (it is then recomputed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable cache file %s: %s", path, exc)
        return None


def _str_array(values: Sequence[str]) -> np.ndarray:
    """Strings as a fixed-width unicode array (stored without pickle)."""
    return np.asarray([str(v) for v in values], dtype=np.str_) if len(values) else np.zeros(0, dtype="<U1")


# -- uploads ----------------------------------------------------------------------------------------
def safe_upload_name(name: str) -> str:
    """A harmless file name for an upload: its last path part, only ``A-Z a-z 0-9 . _ -``, bounded length.

    The browser's name is never used as a path; it only keeps its suffix (which picks the reader)."""
    base = re.split(r"[\\/]", str(name))[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _SAFE_NAME.sub("_", stem).strip("._") or "upload"
    suffix = _SAFE_NAME.sub("", suffix.lower())[:10]
    return f"{stem[:_MAX_NAME_CHARS]}.{suffix}" if suffix else stem[:_MAX_NAME_CHARS]


def read_uploaded_pose(name: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> list[PoseSequence]:
    """Read an uploaded pose file (BVH, keypoint JSON, NPZ/NPY) or video clip into sequences.

    The bytes are read in a worker process with time and memory limits, from memory (no temporary
    file: ``encoder.data.readers.sandbox``); every problem (type, size, content, a limit) is a
    one-line ``PoseDataError`` naming the upload."""
    from encoder.data.readers.sandbox import read_pose_bytes

    display = safe_upload_name(name)
    suffix = Path(display).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise PoseDataError(display, f"unsupported file type '{suffix or '(none)'}'; upload one of "
                            f"{', '.join(UPLOAD_SUFFIXES)}")
    if len(data) > max_bytes:
        raise PoseDataError(display, f"file is {len(data) / 1e6:.1f} MB, over the upload limit of "
                            f"{max_bytes / (1024 * 1024):.0f} MB")
    if not data:
        raise PoseDataError(display, "file is empty")
    sequences = read_pose_bytes(display, data)
    if not sequences:
        raise PoseDataError(display, "no pose sequence found in the file")
    stem = Path(display).stem
    return [s.with_(source=f"upload:{display}", name=s.name or stem) for s in sequences]


# -- motion for display -------------------------------------------------------------------------------
@dataclass(frozen=True)
class MotionView:
    """A sequence prepared for the app's figures.

    ``drawing`` (T, J, 2): x to the right, y up, each frame shifted so the mid-hip is at x = 0 (the
    walker stays in place; 3D sequences are seen from the side after heading alignment, so x is
    forward). ``trajectories`` (T, J, C): eq. (1) centred and scaled joints (3D: heading-aligned,
    axes ``lateral, vertical, forward``; 2D: ``horizontal, vertical`` with y up). ``observed`` (T, J).
    """

    name: str
    fps: float
    drawing: np.ndarray
    trajectories: np.ndarray
    observed: np.ndarray
    axes: tuple[str, ...]

    @property
    def num_frames(self) -> int:
        return int(self.drawing.shape[0])

    @property
    def times(self) -> np.ndarray:
        """Frame times in seconds."""
        return np.arange(self.num_frames) / self.fps


def motion_view(seq: PoseSequence) -> MotionView:
    """Drawing coordinates and comparable trajectories of ``seq`` (see ``MotionView``)."""
    observed = seq.confidence > 0
    if seq.dims == 3:
        aligned = align_heading(seq.joints, seq.confidence).astype(np.float64)   # facing +Z, Y up
        side = aligned[..., [2, 1]]                                               # (forward, up)
        axes: tuple[str, ...] = ("lateral", "vertical", "forward")
        oriented = aligned
    else:
        oriented = seq.joints.astype(np.float64) * np.array([1.0, -1.0])          # image y down -> up
        side = oriented
        axes = ("horizontal", "vertical")
    centre = body_centre(side, seq.confidence)
    drawing = side.copy()
    drawing[..., 0] -= centre[:, None, 0]
    drawing = np.where(observed[..., None], drawing, np.nan)
    trajectories = normalize_center_scale(oriented, seq.confidence)              # eq. (1)
    trajectories = np.where(observed[..., None], trajectories, np.nan)
    return MotionView(name=seq.name or seq.source, fps=float(seq.fps), drawing=drawing.astype(np.float32),
                      trajectories=trajectories.astype(np.float32), observed=observed, axes=axes)


# -- clustering -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbeddingMap:
    """2D layout of an index version's embeddings (row i is ``sequence_ids[i]``)."""

    version: str
    sequence_ids: list[str]
    coords: np.ndarray
    method: str


@dataclass(frozen=True)
class StylePredictions:
    """The style head's logits over an index version's sequences (columns: ``label_names``)."""

    version: str
    sequence_ids: list[str]
    logits: np.ndarray
    label_names: list[str]
    failures: dict[str, str]

    def predicted(self) -> list[str]:
        """Predicted style per row."""
        return [self.label_names[int(i)] for i in self.logits.argmax(axis=1)] if len(self.logits) else []


@dataclass(frozen=True)
class ClusterQuality:
    """Cluster quality of the live index's labelled embeddings.

    ``metrics`` is ``compute_metrics`` over the labelled indexed embeddings (k-means with k =
    number of styles, silhouette, intra/inter-class distances, leave-one-out retrieval);
    ``purity``/``nmi`` are for the chosen ``k`` (equal to ``metrics`` when k is the number of
    styles). ``classification`` is the style head over the sequences it could predict."""

    version: str
    n: int
    unlabelled: int
    k: int
    purity: float | None
    nmi: float | None
    metrics: StyleMetrics
    classification: ClassificationMetrics | None
    prediction_failures: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The stored ``quality-<version>.json`` (metrics in their ``to_dict`` layout)."""
        return {"version": self.version, "n": self.n, "unlabelled": self.unlabelled, "k": self.k,
                "purity": self.purity, "nmi": self.nmi, "metrics": self.metrics.to_dict(),
                "classification": None if self.classification is None else self.classification.to_dict(),
                "prediction_failures": dict(self.prediction_failures)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterQuality:
        cls_data = data["classification"]
        return cls(version=str(data["version"]), n=int(data["n"]), unlabelled=int(data["unlabelled"]),
                   k=int(data["k"]), purity=data["purity"], nmi=data["nmi"],
                   metrics=StyleMetrics.from_dict(data["metrics"]),
                   classification=None if cls_data is None else ClassificationMetrics.from_dict(cls_data),
                   prediction_failures=dict(data.get("prediction_failures", {})))


# -- the live index ---------------------------------------------------------------------------------
@dataclass
class LiveIndex:
    """The index version being served, its encoder (None when its checkpoint cannot be loaded) and search."""

    record: IndexVersionRecord
    searcher: VectorSearcher
    search: SearchService
    encoder: StyleEncoder | None
    encoder_problem: str | None = None

    @property
    def version(self) -> str:
        return self.searcher.version

    @property
    def fallback_reason(self) -> str | None:
        """Set when the live version is damaged and an earlier verified version is served instead."""
        return self.searcher.fallback_reason


@dataclass
class ReindexLaunch:
    """A re-index started by the app in a background thread; ``error`` holds its failure (one line)."""

    launch_id: str
    checkpoint: str
    thread: threading.Thread
    error: str | None = None
    job_id: str | None = None
    live_version: str | None = None

    @property
    def running(self) -> bool:
        return self.thread.is_alive()


class AppService:
    """Everything the app does, over one data root and metadata store."""

    def __init__(self, root: str | Path, store_url: str | None = None) -> None:
        """``root``: the data folder (``index_data``); ``store_url`` defaults to ``<root>/metadata.db``.

        A missing root is not created here (the app only reads until a re-index is started)."""
        self.root = Path(root)
        self.store_url = store_url or default_database_url(self.root)
        self._store: MetadataStore | None = None
        self._lock = threading.Lock()
        self._launches: dict[str, ReindexLaunch] = {}

    # -- store and index ----------------------------------------------------------------------
    def _is_default_store(self) -> bool:
        return self.store_url == default_database_url(self.root)

    def has_store(self) -> bool:
        """False when the default SQLite store file does not exist yet (nothing was ever indexed)."""
        return not self._is_default_store() or (self.root / "metadata.db").is_file()

    @property
    def store(self) -> MetadataStore:
        """The metadata store (opened, and migrated to the current schema, on first use)."""
        with self._lock:
            if self._store is None:
                if not self.has_store():
                    raise NoIndexError(self.root, "no metadata store")
                self._store = MetadataStore.open(self.store_url)
            return self._store

    @property
    def index_manager(self) -> IndexManager:
        return IndexManager(self.root, self.store)

    def close(self) -> None:
        """Close the store connection (reopened on next use)."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def __enter__(self) -> "AppService":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def live_pointer(self) -> str | None:
        """What the ``LIVE`` file names (cheap; the app's cache key for the loaded index): the live
        version, ``UNREADABLE_POINTER`` when the file is damaged, None when nothing is live."""
        if not self.has_store():
            return None
        try:
            return self.index_manager.live_version()
        except IndexCorruptError:
            return UNREADABLE_POINTER

    def open_live(self) -> LiveIndex:
        """Load the live index and its encoder; ``NoIndexError`` when nothing is live."""
        from encoder.inference import StyleEncoder

        store = self.store
        search = SearchService(store, self.index_manager)
        try:
            searcher = search.searcher()
        except NoLiveIndexError as exc:
            raise NoIndexError(self.root, one_line(exc)) from None
        record = store.get_index_version(searcher.version)
        if record is None:
            raise NoIndexError(self.root, f"index version {searcher.version} is not in the store")
        encoder, problem = None, None
        registered = store.get_encoder(searcher.encoder_version)
        if registered is None:
            problem = f"encoder {searcher.encoder_version} is not registered in the store"
        else:
            try:
                encoder = StyleEncoder.load(registered.checkpoint_path)
            except PoseDataError as exc:   # CheckpointError included
                problem = one_line(exc)
            else:
                if encoder.version != searcher.encoder_version:
                    problem = (f"{registered.checkpoint_path} is encoder {encoder.version}, the index needs "
                               f"{searcher.encoder_version}")
                    encoder = None
        search.embedder = encoder
        freeze_loaded_objects()   # the app keeps them until the next promotion; queries then skip them
        return LiveIndex(record=record, searcher=searcher, search=search, encoder=encoder,
                         encoder_problem=problem)

    # -- catalogue ------------------------------------------------------------------------------
    def filter_options(self) -> dict[str, list[str]]:
        """Values offered by each filter menu (label, collection, season, tags)."""
        return {name: self.store.distinct_values(name) for name in FILTER_FIELDS}

    def indexed_sequences(self, live: LiveIndex) -> list[SequenceRecord]:
        """Store records of the sequences in the live index, sorted by id."""
        records = self.store.get_sequences(live.searcher.sequence_ids)
        return [records[s] for s in sorted(records)]

    def load_sequence(self, sequence_id: str) -> PoseSequence:
        """The motion of a stored sequence, from the dataset cache it was registered from."""
        record = self.store.get_sequence(sequence_id)
        if record is None:
            raise PoseDataError(sequence_id, "no such sequence in the store")
        dataset = dataset_for(record, None)
        if dataset is None:
            raise PoseDataError(sequence_id, "the store does not say which dataset holds this sequence")
        seq = SequenceLoader().load(EmbedRequest(sequence_id, dataset, record.content_hash))
        return seq.with_(label=record.label)

    # -- search ---------------------------------------------------------------------------------
    @staticmethod
    def make_filters(label: Sequence[str] = (), collection: Sequence[str] = (), season: Sequence[str] = (),
                     tags: Sequence[str] = ()) -> SearchFilters | None:
        """Filters from the menus' selections (an empty menu does not filter; tags match any of those
        chosen); None when nothing is chosen."""
        filters = SearchFilters(label=list(label) or None, collection=list(collection) or None,
                                season=list(season) or None, tags=tuple(tags))
        return None if filters.is_empty else filters

    @staticmethod
    def search_by_id(live: LiveIndex, sequence_id: str, k: int, filters: SearchFilters | None) -> list[SearchHit]:
        """Sequences closest in style to an indexed one (itself excluded)."""
        return live.search.search_by_id(sequence_id, k, filters)

    @staticmethod
    def search_by_sequence(live: LiveIndex, seq: PoseSequence, k: int,
                           filters: SearchFilters | None) -> list[SearchHit]:
        """Sequences closest in style to an uploaded sequence (embedded with the live index's encoder)."""
        if live.encoder is None:
            raise PoseDataError(seq.source or seq.name, f"cannot embed uploads: {live.encoder_problem}")
        return live.search.search_by_sequence(seq, k, filters)

    @staticmethod
    def explain(live: LiveIndex, seq: PoseSequence) -> dict[str, Any] | None:
        """``StyleEncoder.explain`` of a sequence (segment and region weights), None without an encoder."""
        return live.encoder.explain(seq) if live.encoder is not None else None

    # -- derived data per index version -----------------------------------------------------------
    def cache_path(self, kind: str, version: str) -> Path:
        """``<root>/cache/<kind>-<version>.npz`` (version names are safe folder names)."""
        return self.root / CACHE_DIR / f"{kind}-{version}.npz"

    @staticmethod
    def embeddings(live: LiveIndex) -> tuple[list[str], np.ndarray]:
        """All indexed ids and their (unit) vectors, in index order."""
        ids = list(live.searcher.sequence_ids)
        return ids, live.searcher.vectors(np.arange(len(ids)))

    def embedding_map(self, live: LiveIndex) -> EmbeddingMap:
        """The 2D UMAP (PCA below 10 points) of the live embeddings, computed once per version."""
        from encoder.evaluation.plots import embedding_map

        ids = list(live.searcher.sequence_ids)
        path = self.cache_path("umap", live.version)
        cached = _read_npz(path)
        if (cached is not None and {"ids", "coords", "method"} <= cached.keys()
                and cached["ids"].tolist() == ids and cached["coords"].shape == (len(ids), 2)):
            return EmbeddingMap(live.version, ids, cached["coords"].astype(np.float64), str(cached["method"]))
        _, vectors = self.embeddings(live)
        coords, method = embedding_map(vectors)
        atomic_write_npz(path, {"ids": _str_array(ids), "coords": np.asarray(coords, np.float64),
                                 "method": np.asarray(method)})
        return EmbeddingMap(live.version, ids, np.asarray(coords, np.float64), method)

    def style_predictions(self, live: LiveIndex) -> StylePredictions | None:
        """The style head's logits over the indexed sequences (computed once per version); None without
        an encoder. Sequences that cannot be loaded or embedded are listed in ``failures``."""
        if live.encoder is None:
            return None
        ids = list(live.searcher.sequence_ids)
        path = self.cache_path("predictions", live.version)
        cached = _read_npz(path)
        if cached is not None and {"ids", "logits", "label_names", "failed_ids", "failed_reasons"} <= cached.keys():
            failures = dict(zip(cached["failed_ids"].tolist(), cached["failed_reasons"].tolist()))
            if sorted(cached["ids"].tolist() + list(failures)) == sorted(ids):
                return StylePredictions(live.version, cached["ids"].tolist(), cached["logits"],
                                        cached["label_names"].tolist(), failures)
        predictions = self._predict(live, ids)
        atomic_write_npz(path, {"ids": _str_array(predictions.sequence_ids), "logits": predictions.logits,
                                 "label_names": _str_array(predictions.label_names),
                                 "failed_ids": _str_array(list(predictions.failures)),
                                 "failed_reasons": _str_array(list(predictions.failures.values()))})
        return predictions

    def _predict(self, live: LiveIndex, ids: list[str]) -> StylePredictions:
        """The head over the indexed vectors where the index keeps them exactly and the model allows (no
        second pass over the takes), else each take loaded and embedded again."""
        encoder = live.encoder
        exact = live.searcher.exact_vectors
        logits_of_vectors = encoder.logits_from_embeddings(self.embeddings(live)[1]) if exact else None
        if logits_of_vectors is not None:
            return StylePredictions(live.version, ids, logits_of_vectors, list(encoder.labels), {})
        records = self.store.get_sequences(ids)
        loader = SequenceLoader()
        done_ids: list[str] = []
        logits: list[np.ndarray] = []
        failures: dict[str, str] = {}
        for start in range(0, len(ids), PREDICTION_BATCH):
            batch: list[tuple[str, PoseSequence]] = []
            for sequence_id in ids[start:start + PREDICTION_BATCH]:
                record = records.get(sequence_id)
                dataset = dataset_for(record, None) if record is not None else None
                if dataset is None:
                    failures[sequence_id] = f"{sequence_id}: no dataset recorded for this sequence"
                    continue
                try:
                    batch.append((sequence_id, loader.load(EmbedRequest(sequence_id, dataset, record.content_hash))))
                except PoseDataError as exc:
                    failures[sequence_id] = one_line(exc)
            for sequence_id, row in self._batch_logits(encoder, batch, failures):
                done_ids.append(sequence_id)
                logits.append(row)
        matrix = np.stack(logits).astype(np.float32) if logits else np.zeros((0, len(encoder.labels)), np.float32)
        return StylePredictions(live.version, done_ids, matrix, list(encoder.labels), failures)

    @staticmethod
    def _batch_logits(encoder: StyleEncoder, batch: list[tuple[str, PoseSequence]],
                      failures: dict[str, str]) -> list[tuple[str, np.ndarray]]:
        """Logits of a batch; when one sequence is refused, the others are done one by one."""
        if not batch:
            return []
        try:
            _, logits = encoder.embed_and_logits([s for _, s in batch])
            return list(zip([i for i, _ in batch], logits))
        except PoseDataError:
            out = []
            for sequence_id, seq in batch:
                try:
                    out.append((sequence_id, encoder.embed_and_logits([seq])[1][0]))
                except PoseDataError as exc:
                    failures[sequence_id] = one_line(exc)
            return out

    def cluster_labels(self, live: LiveIndex, k: int, seed: int = 0) -> dict[str, int]:
        """k-means cluster of every indexed sequence."""
        ids, vectors = self.embeddings(live)
        return dict(zip(ids, kmeans_labels(vectors, k, KMEANS_RESTARTS, seed).tolist()))

    def precompute_views(self, live: LiveIndex) -> None:
        """Compute what the Explore and Evaluate pages show for a version (the map, the style head's
        predictions, the default cluster quality) and store it under ``cache/``, each file atomically;
        run when a version is built, so the pages only load it. Already stored parts are kept."""
        self.embedding_map(live)
        self.style_predictions(live)
        try:
            self.cluster_quality(live)
        except ValueError:    # fewer than 2 styles: the Evaluate page says why when it is opened
            pass

    def _cached_quality(self, live: LiveIndex, n_indexed: int) -> ClusterQuality | None:
        path = self.cache_path("quality", live.version).with_suffix(".json")
        try:
            quality = ClusterQuality.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError):
            return None
        fresh = quality.version == live.version and quality.n + quality.unlabelled == n_indexed
        return quality if fresh else None

    def cluster_quality(self, live: LiveIndex, k: int | None = None, seed: int = 0) -> ClusterQuality:
        """Purity, NMI (k-means with ``k``, default the number of styles), silhouette, intra/inter-class
        distances and the style head's confusion matrix, for the live index's labelled sequences.
        The default (``k=None``, ``seed=0``) is stored per version and read back."""
        from sklearn.metrics import normalized_mutual_info_score

        default = k is None and seed == 0
        if default and (cached := self._cached_quality(live, len(live.searcher.sequence_ids))) is not None:
            return cached
        ids, vectors = self.embeddings(live)
        records = self.store.get_sequences(ids)
        labelled = [i for i, s in enumerate(ids) if s in records and records[s].label is not None]
        labels = [str(records[ids[i]].label) for i in labelled]
        n_styles = len(set(labels))
        if n_styles < 2 or len(labelled) <= n_styles:
            raise ValueError(f"cluster quality needs at least 2 styles and more labelled sequences than styles; "
                             f"the live index has {len(labelled)} labelled sequences in {n_styles} style(s)")
        emb = vectors[labelled]
        metrics = compute_metrics(emb, None, labels, k_means_restarts=KMEANS_RESTARTS, seed=seed)
        chosen = n_styles if k is None else int(k)
        purity, nmi = metrics.embedding.purity, metrics.embedding.nmi
        if chosen != n_styles:
            clusters = kmeans_labels(emb, chosen, KMEANS_RESTARTS, seed)
            purity = float(cluster_purity(labels, clusters))
            nmi = float(normalized_mutual_info_score(labels, clusters))
        classification, failures = None, {}
        predictions = self.style_predictions(live)
        if predictions is not None:
            failures = predictions.failures
            predicted = dict(zip(predictions.sequence_ids, predictions.predicted()))
            pairs = [(records[s].label, predicted[s]) for s in (ids[i] for i in labelled) if s in predicted]
            if pairs:
                classification = classification_metrics([t for t, _ in pairs], [p for _, p in pairs],
                                                         predictions.label_names)
        quality = ClusterQuality(version=live.version, n=len(labelled), unlabelled=len(ids) - len(labelled),
                                 k=chosen, purity=purity, nmi=nmi, metrics=metrics, classification=classification,
                                 prediction_failures=failures)
        if default:
            text = json.dumps(quality.to_dict())
            atomic_write_bytes(self.cache_path("quality", live.version).with_suffix(".json"), text.encode("utf-8"))
        return quality

    # -- versions and jobs ----------------------------------------------------------------------
    def index_versions(self) -> list[IndexVersionRecord]:
        """Every index version the store knows, newest first (empty without a store)."""
        if not self.has_store():
            return []
        return self.store.list_index_versions()

    def encoder_names(self) -> dict[str, str]:
        """Model name of each registered encoder version."""
        if not self.has_store():
            return {}
        return {e.version: e.model_name for e in self.store.list_encoders()}

    def jobs(self, limit: int = 20) -> list[JobRecord]:
        """Re-index jobs, newest first."""
        if not self.has_store():
            return []
        return self.store.list_jobs(kind=JOB_KIND, limit=limit)

    def default_checkpoint(self) -> str | None:
        """Checkpoint of the live index's encoder (what a re-index uses unless told otherwise)."""
        pointer = self.live_pointer()
        if pointer is None or not self.has_store():
            return None
        record = self.store.get_index_version(pointer)
        encoder = self.store.get_encoder(record.encoder_version) if record is not None else None
        return encoder.checkpoint_path if encoder is not None else None

    def start_reindex(self, checkpoint: str | Path, dataset: str | Path | None = None,
                      index_type: str = "auto") -> ReindexLaunch:
        """Start ``ReindexJob`` in a background thread (its own store connection); follow it with ``jobs``.

        Bad arguments fail here (one line); a failure during the run is kept on the launch and the
        job row."""
        from encoder.data.dataset import DatasetCache

        checkpoint = Path(checkpoint).expanduser()
        if not checkpoint.is_file():
            raise JobError(f"{checkpoint}: checkpoint file not found")
        cache = DatasetCache.open(Path(dataset).expanduser()) if dataset else None
        if cache is None and not self.has_store():
            raise NoIndexError(self.root, "no metadata store")
        launch_id = uuid.uuid4().hex[:12]

        def run() -> None:
            from retrieval.jobs import register_dataset

            launch = self._launches[launch_id]
            try:
                with MetadataStore.open(self.store_url) as store:
                    if cache is not None:
                        register_dataset(store, cache)
                    job = ReindexJob(store, IndexManager(self.root, store), cache, checkpoint, "local",
                                     index_type=index_type, progress=False)
                    summary = job.run()
                    launch.job_id, launch.live_version = summary.job_id, summary.live_version
                with AppService(self.root, self.store_url) as views:
                    views.precompute_views(views.open_live())
            except Exception as exc:  # kept for the app to show; the job row records it too
                log.exception("re-index started by the app failed")
                launch.error = one_line(exc)

        thread = threading.Thread(target=run, name=f"reindex-{launch_id}", daemon=True)
        launch = ReindexLaunch(launch_id=launch_id, checkpoint=str(checkpoint), thread=thread)
        with self._lock:
            self._launches[launch_id] = launch
        thread.start()
        return launch

    def launches(self) -> list[ReindexLaunch]:
        """Re-indexes this app process started, newest last."""
        with self._lock:
            return list(self._launches.values())
