"""Plain, immutable records the store returns and accepts (never live ORM rows), and sequence filters."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Sequence

if TYPE_CHECKING:
    from encoder.data.sequence import PoseSequence

# Keys of ``PoseSequence.metadata`` that become store columns rather than ``extra``.
_COLUMN_KEYS = ("collection", "season", "model_id", "tags")


@dataclass(frozen=True)
class SequenceRecord:
    """Catalogue entry of one pose sequence; ``id`` is its unique name."""

    id: str
    content_hash: str
    source: str = ""
    label: str | None = None
    collection: str | None = None
    season: str | None = None
    model_id: str | None = None
    tags: tuple[str, ...] = ()
    fps: float = 30.0
    frames: int = 0
    skeleton: str = "coco17"
    dims: int = 3
    extra: dict[str, Any] = field(default_factory=dict)
    created: datetime | None = None
    updated: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(sorted({str(t) for t in self.tags})))

    @classmethod
    def from_pose_sequence(cls, seq: "PoseSequence", sequence_id: str | None = None,
                           **overrides: Any) -> "SequenceRecord":
        """Record for ``seq``: id defaults to ``seq.name``; collection/season/model_id/tags come from
        ``seq.metadata`` (other JSON-serialisable metadata goes to ``extra``) unless overridden."""
        meta = dict(seq.metadata)
        tags = meta.get("tags") or ()
        values: dict[str, Any] = dict(
            id=sequence_id or seq.name,
            content_hash=seq.content_hash(),
            source=seq.source,
            label=seq.label,
            collection=_optional_str(meta.get("collection")),
            season=_optional_str(meta.get("season")),
            model_id=_optional_str(meta.get("model_id")),
            tags=tuple([tags] if isinstance(tags, str) else tags),
            fps=float(seq.fps),
            frames=seq.num_frames,
            skeleton=seq.skeleton,
            dims=seq.dims,
            extra=json.loads(json.dumps({k: v for k, v in meta.items() if k not in _COLUMN_KEYS}, default=str)),
        )
        values.update(overrides)
        return cls(**values)

    def metadata(self) -> dict[str, Any]:
        """All fields as a JSON-friendly dict (what a search hit carries)."""
        out = asdict(self)
        out["tags"] = list(self.tags)
        for key in ("created", "updated"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out

    def same_content(self, other: "SequenceRecord") -> bool:
        """True when every stored field except timestamps is equal (an upsert would change nothing)."""
        return replace(self, created=None, updated=None) == replace(other, created=None, updated=None)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class EncoderRecord:
    """A trained encoder checkpoint registered with the store."""

    version: str
    checkpoint_hash: str
    checkpoint_path: str
    model_name: str
    embedding_dim: int
    config: dict[str, Any] = field(default_factory=dict)
    created: datetime | None = None


@dataclass(frozen=True)
class EmbeddingRecord:
    """Where the vector of ``sequence_id`` under one encoder lies on disk (shard file, row)."""

    sequence_id: str
    content_hash: str
    shard: str
    row: int
    encoder_version: str | None = None
    created: datetime | None = None


@dataclass(frozen=True)
class IndexVersionRecord:
    """One index build and its lifecycle status (building -> verified -> live -> retired, or failed)."""

    version: str
    encoder_version: str
    spec: str
    dimension: int
    count: int
    status: str
    path: str
    message: str | None = None
    created: datetime | None = None
    verified_at: datetime | None = None
    promoted_at: datetime | None = None


@dataclass(frozen=True)
class JobRecord:
    """A long-running job's state and progress."""

    id: str
    kind: str
    status: str
    encoder_version: str | None
    index_version: str | None
    total: int
    done: int
    error_count: int
    error_log: list[dict[str, Any]]
    params: dict[str, Any]
    message: str | None
    heartbeat: datetime
    started: datetime
    finished: datetime | None


@dataclass(frozen=True)
class UpsertReport:
    """What ``upsert_sequences`` did: counts of new, changed and identical records."""

    inserted: int
    updated: int
    unchanged: int


StrOrMany = str | Sequence[str] | None


@dataclass(frozen=True)
class SequenceFilters:
    """Restrict sequences by metadata. Each field is one value or any-of several; ``None`` = no limit.

    ``tags`` match on any of them (``tags_mode="any"``) or all of them (``tags_mode="all"``).
    """

    label: StrOrMany = None
    collection: StrOrMany = None
    season: StrOrMany = None
    model_id: StrOrMany = None
    tags: Sequence[str] = ()
    tags_mode: Literal["any", "all"] = "any"

    def __post_init__(self) -> None:
        if self.tags_mode not in ("any", "all"):
            raise ValueError(f"tags_mode must be 'any' or 'all', got {self.tags_mode!r}")
        tags = (self.tags,) if isinstance(self.tags, str) else tuple(self.tags)
        object.__setattr__(self, "tags", tuple(sorted(set(tags))))

    @property
    def is_empty(self) -> bool:
        """True when the filters let every sequence through."""
        return not self.tags and all(
            getattr(self, name) is None for name in ("label", "collection", "season", "model_id"))

    def column_values(self) -> dict[str, tuple[str, ...]]:
        """The column restrictions, each as a tuple of allowed values."""
        out: dict[str, tuple[str, ...]] = {}
        for name in ("label", "collection", "season", "model_id"):
            value = getattr(self, name)
            if value is not None:
                out[name] = (value,) if isinstance(value, str) else tuple(value)
        return out
