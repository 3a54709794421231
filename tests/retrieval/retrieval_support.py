"""Small synthetic data for the retrieval tests: unit embeddings, a sequence catalogue, an encoder."""
from __future__ import annotations

import numpy as np

from retrieval.store import EncoderRecord, MetadataStore, SequenceRecord


def clustered_unit_vectors(n: int, dim: int, *, clusters: int = 20, spread: float = 0.6,
                           seed: int = 0) -> np.ndarray:
    """``n`` unit vectors around ``clusters`` random centres (embeddings cluster by style)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    points = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, dim))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32)


LABELS = ("elegant", "energetic", "relaxed", "confident")
COLLECTIONS = ("spring", "autumn", "resort")
SEASONS = ("2023", "2024")
TAGS = ("runway", "casual", "evening", "studio")


def catalogue(n: int, seed: int = 0) -> list[SequenceRecord]:
    """``n`` sequence records with varied label / collection / season / tags (``seq-00000``...)."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        tags = tuple(t for t in TAGS if rng.random() < 0.4)
        records.append(SequenceRecord(
            id=f"seq-{i:05d}", content_hash=f"{i:064x}", source=f"/data/seq-{i:05d}.bvh",
            label=LABELS[int(rng.integers(len(LABELS)))], collection=COLLECTIONS[int(rng.integers(len(COLLECTIONS)))],
            season=SEASONS[int(rng.integers(len(SEASONS)))], model_id=f"model-{i % 7}", tags=tags,
            fps=30.0, frames=int(rng.integers(60, 300)), skeleton="coco17", dims=3, extra={"take": i}))
    return records


def register_encoder(store: MetadataStore, version: str = "enc-a", dim: int = 16) -> EncoderRecord:
    """Register a stand-in encoder of embedding dimension ``dim``."""
    return store.register_encoder(EncoderRecord(version=version, checkpoint_hash=f"hash-{version}",
                                                checkpoint_path=f"/models/{version}.safetensors",
                                                model_name="posestyle_net", embedding_dim=dim))
