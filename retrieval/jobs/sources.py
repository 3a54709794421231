"""Where a job finds the motion of a stored sequence: dataset caches, and registering them in the store.

``posestyle index`` registers a dataset's items as store sequences and records the dataset folder
in each record's ``extra["dataset"]``, so a later ``posestyle reindex`` without ``--data`` still
knows where every sequence's arrays lie. A request to embed carries (sequence id, dataset folder,
content hash); the loader refuses content that differs from what the store recorded.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encoder.data.dataset import DatasetCache, DatasetItem
from encoder.data.errors import PoseDataError
from encoder.data.sequence import PoseSequence
from retrieval.store import MetadataStore, SequenceRecord, UpsertReport

DATASET_KEY = "dataset"
# Keys of the dataset item metadata that are store columns (as in SequenceRecord.from_pose_sequence).
_COLUMN_KEYS = ("collection", "season", "model_id", "tags")


@dataclass(frozen=True)
class EmbedRequest:
    """One sequence to embed: its store id, the dataset folder holding it and the content expected."""

    sequence_id: str
    dataset: str
    content_hash: str


def sequence_record_for(item: DatasetItem, dataset_root: str | Path) -> SequenceRecord:
    """The store record of a dataset item (no array is read), remembering the dataset folder."""
    meta = dict(item.metadata)
    tags = meta.get("tags") or ()
    extra = json.loads(json.dumps({k: v for k, v in meta.items() if k not in _COLUMN_KEYS}, default=str))
    extra[DATASET_KEY] = str(Path(dataset_root).resolve())
    return SequenceRecord(
        id=item.name, content_hash=item.content_hash, source=item.source, label=item.label,
        collection=_optional_str(meta.get("collection")), season=_optional_str(meta.get("season")),
        model_id=_optional_str(meta.get("model_id")), tags=tuple([tags] if isinstance(tags, str) else tags),
        fps=float(item.fps), frames=int(item.frames), skeleton=item.skeleton, dims=int(item.dims), extra=extra)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def register_dataset(store: MetadataStore, dataset: DatasetCache) -> UpsertReport:
    """Insert or update a store sequence for every item of ``dataset`` (one transaction)."""
    return store.upsert_sequences(sequence_record_for(item, dataset.root) for item in dataset.items)


def dataset_for(record: SequenceRecord, preferred: DatasetCache | None) -> str | None:
    """The dataset folder to load ``record`` from: ``preferred`` when it holds that name with the same
    content, else the folder recorded at registration, else None."""
    return dataset_of(record.id, record.content_hash, record.extra, preferred)


def dataset_of(sequence_id: str, content_hash: str, extra: dict[str, Any], preferred: DatasetCache | None,
               preferred_root: str | None = None) -> str | None:
    """``dataset_for`` from a sequence's id, content hash and ``extra`` (``preferred_root``: the
    preferred dataset's resolved folder, when the caller already has it)."""
    if (preferred is not None and sequence_id in preferred
            and preferred.item(sequence_id).content_hash == content_hash):
        return preferred_root or str(preferred.root.resolve())
    recorded = extra.get(DATASET_KEY)
    return str(recorded) if recorded else None


class SequenceLoader:
    """Loads requested sequences from their dataset caches (each cache opened once)."""

    def __init__(self) -> None:
        self._caches: dict[str, DatasetCache] = {}

    def _cache(self, root: str) -> DatasetCache:
        if root not in self._caches:
            self._caches[root] = DatasetCache.open(root)
        return self._caches[root]

    def prefetch(self, requests: Iterable[EmbedRequest]) -> None:
        """Start reading the requested sequences' files in the background (``DatasetCache.prefetch``);
        a dataset that cannot be opened is left for ``load`` to report."""
        by_dataset: dict[str, list[str]] = {}
        for request in requests:
            by_dataset.setdefault(request.dataset, []).append(request.sequence_id)
        for root, names in by_dataset.items():
            try:
                cache = self._cache(root)
            except PoseDataError:
                continue
            cache.prefetch(names)

    def load(self, request: EmbedRequest) -> PoseSequence:
        """The sequence, named by its store id; ``PoseDataError`` if it cannot be read or its content
        is not the content the store recorded."""
        cache = self._cache(request.dataset)
        if request.sequence_id not in cache:
            raise PoseDataError(request.dataset, f"dataset has no sequence {request.sequence_id!r}; pass --data "
                                "with the dataset that holds it")
        found = cache.item(request.sequence_id).content_hash
        if found != request.content_hash:
            raise PoseDataError(cache.array_path(found), f"content of {request.sequence_id!r} differs from the "
                                "store's; run posestyle index to register the new content")
        seq = cache.load(request.sequence_id)      # load checks the file's hash
        return seq if seq.name == request.sequence_id else seq.with_(name=request.sequence_id)
