"""Typed metric results: what ``compute_metrics`` returns and bench, ``posestyle evaluate``, CLI and app read.

Every type is a frozen dataclass with ``to_dict()`` (the JSON layout the project has always
written: nested ``classification`` / ``embedding`` / ``retrieval`` blocks, flat benchmark rows
with ``gallery_p@5``-style names) and ``from_dict()`` (reads that JSON back, so committed runs
files, ``metrics.json`` reports and the app's stored views still load).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

RETRIEVAL_KS: tuple[int, ...] = (5, 10)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


# -- classification -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassScores:
    """Precision, recall, F1 and support (true takes) of one style."""

    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "support": self.support}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassScores:
        return cls(float(data["precision"]), float(data["recall"]), float(data["f1"]), int(data["support"]))


@dataclass(frozen=True)
class ClassificationMetrics:
    """The style head: accuracy, macro-F1, per-class scores, confusion matrix (rows true, columns
    predicted, both in ``labels`` order)."""

    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassScores]
    labels: list[str]
    confusion: list[list[int]]

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1,
                "per_class": {name: s.to_dict() for name, s in self.per_class.items()},
                "confusion": {"labels": list(self.labels), "matrix": [list(r) for r in self.confusion]}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassificationMetrics:
        return cls(accuracy=float(data["accuracy"]), macro_f1=float(data["macro_f1"]),
                   per_class={k: ClassScores.from_dict(v) for k, v in data["per_class"].items()},
                   labels=[str(x) for x in data["confusion"]["labels"]],
                   confusion=[[int(c) for c in row] for row in data["confusion"]["matrix"]])


# -- embedding space ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbeddingSpaceMetrics:
    """k-means (k = number of styles) purity and NMI, cosine silhouette with the true styles, mean
    intra-/inter-class cosine distance. ``note`` says why purity/NMI are missing (then ``restarts`` is None)."""

    k: int
    purity: float | None
    nmi: float | None
    silhouette: float | None = None
    intra_cos_dist: float | None = None
    inter_cos_dist: float | None = None
    restarts: int | None = None
    note: str | None = None

    @property
    def inter_minus_intra(self) -> float | None:
        if self.intra_cos_dist is None or self.inter_cos_dist is None:
            return None
        return self.inter_cos_dist - self.intra_cos_dist

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"k": self.k}
        if self.restarts is not None:
            out["restarts"] = self.restarts
        out.update(purity=self.purity, nmi=self.nmi)
        if self.note is not None:
            out["note"] = self.note
        out.update(silhouette_cosine=self.silhouette, intra_class_cosine_distance=self.intra_cos_dist,
                   inter_class_cosine_distance=self.inter_cos_dist, inter_minus_intra=self.inter_minus_intra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmbeddingSpaceMetrics:
        return cls(k=int(data["k"]), purity=_opt_float(data.get("purity")), nmi=_opt_float(data.get("nmi")),
                   silhouette=_opt_float(data.get("silhouette_cosine")),
                   intra_cos_dist=_opt_float(data.get("intra_class_cosine_distance")),
                   inter_cos_dist=_opt_float(data.get("inter_class_cosine_distance")),
                   restarts=_opt_int(data.get("restarts")), note=data.get("note"))


# -- retrieval ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetrievalMetrics:
    """precision@k (``precision_at[k]``) and mAP of ranking by cosine similarity; a hit is the same style.
    ``queries_without_hit`` is None when nothing could be ranked (empty queries or gallery)."""

    queries: int
    gallery_size: int
    precision_at: dict[int, float | None]
    map: float | None
    queries_without_hit: int | None = None

    def p(self, k: int) -> float | None:
        """precision@k (None when not measured)."""
        return self.precision_at.get(k)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"queries": self.queries, "gallery_size": self.gallery_size}
        out.update({f"precision_at_{k}": v for k, v in self.precision_at.items()})
        out["map"] = self.map
        if self.queries_without_hit is not None:
            out["queries_without_hit"] = self.queries_without_hit
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetrievalMetrics:
        prefix = "precision_at_"
        precision = {int(k[len(prefix):]): _opt_float(v) for k, v in data.items() if k.startswith(prefix)}
        return cls(queries=int(data["queries"]), gallery_size=int(data["gallery_size"]),
                   precision_at=dict(sorted(precision.items())), map=_opt_float(data.get("map")),
                   queries_without_hit=_opt_int(data.get("queries_without_hit")))


# -- all the metrics of one set of test embeddings -----------------------------------------------
@dataclass(frozen=True)
class StyleMetrics:
    """Every BENCHMARK.md metric of one set of test embeddings: the style head (None without
    predictions), the embedding space, leave-one-out retrieval in the test split, and retrieval
    against the train+val gallery (None without one)."""

    n: int
    dim: int
    label_counts: dict[str, int]
    embedding: EmbeddingSpaceMetrics
    leave_one_out: RetrievalMetrics
    classification: ClassificationMetrics | None = None
    gallery: RetrievalMetrics | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n, "dim": self.dim, "label_counts": dict(self.label_counts)}
        if self.classification is not None:
            out["classification"] = self.classification.to_dict()
        out["embedding"] = self.embedding.to_dict()
        retrieval: dict[str, Any] = {"leave_one_out": self.leave_one_out.to_dict()}
        if self.gallery is not None:
            retrieval["gallery"] = self.gallery.to_dict()
        out["retrieval"] = retrieval
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StyleMetrics:
        """Reads ``to_dict``'s layout; keys it does not know (``cost``, ``context``...) are ignored."""
        retrieval = data["retrieval"]
        cls_data, gal_data = data.get("classification"), retrieval.get("gallery")
        return cls(n=int(data["n"]), dim=int(data["dim"]),
                   label_counts={str(k): int(v) for k, v in data["label_counts"].items()},
                   embedding=EmbeddingSpaceMetrics.from_dict(data["embedding"]),
                   leave_one_out=RetrievalMetrics.from_dict(retrieval["leave_one_out"]),
                   classification=None if cls_data is None else ClassificationMetrics.from_dict(cls_data),
                   gallery=None if gal_data is None else RetrievalMetrics.from_dict(gal_data))


@dataclass(frozen=True)
class CostMetrics:
    """The BENCHMARK.md cost figures (see ``encoder.evaluation.cost``) and how they were measured."""

    parameters: int
    embeddings_per_second: float
    model_embeddings_per_second: float
    single_query_latency_ms: float
    timed_sequences: int
    batch_size: int
    threads: int
    device: str
    repeats: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostMetrics:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


# -- flat benchmark rows ---------------------------------------------------------------------------
# HeadlineMetrics field -> its name in benchmark rows and reports (the runs file's ``metrics`` keys).
HEADLINE_NAMES: dict[str, str] = {
    "accuracy": "accuracy", "macro_f1": "macro_f1", "purity": "purity", "nmi": "nmi", "silhouette": "silhouette",
    "intra_cos_dist": "intra_cos_dist", "inter_cos_dist": "inter_cos_dist",
    "gallery_p5": "gallery_p@5", "gallery_p10": "gallery_p@10", "gallery_map": "gallery_map",
    "loo_p5": "loo_p@5", "loo_p10": "loo_p@10", "loo_map": "loo_map",
}
PER_CLASS_F1_PREFIX = "f1/"


@dataclass(frozen=True)
class HeadlineMetrics:
    """The figures of one benchmark run, flat (None: not measured), plus F1 per style."""

    accuracy: float | None = None
    macro_f1: float | None = None
    purity: float | None = None
    nmi: float | None = None
    silhouette: float | None = None
    intra_cos_dist: float | None = None
    inter_cos_dist: float | None = None
    gallery_p5: float | None = None
    gallery_p10: float | None = None
    gallery_map: float | None = None
    loo_p5: float | None = None
    loo_p10: float | None = None
    loo_map: float | None = None
    f1_per_class: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_metrics(cls, metrics: StyleMetrics) -> HeadlineMetrics:
        cls_m, emb, loo, gal = metrics.classification, metrics.embedding, metrics.leave_one_out, metrics.gallery
        return cls(
            accuracy=None if cls_m is None else cls_m.accuracy, macro_f1=None if cls_m is None else cls_m.macro_f1,
            purity=emb.purity, nmi=emb.nmi, silhouette=emb.silhouette,
            intra_cos_dist=emb.intra_cos_dist, inter_cos_dist=emb.inter_cos_dist,
            gallery_p5=None if gal is None else gal.p(5), gallery_p10=None if gal is None else gal.p(10),
            gallery_map=None if gal is None else gal.map,
            loo_p5=loo.p(5), loo_p10=loo.p(10), loo_map=loo.map,
            f1_per_class={} if cls_m is None else {k: s.f1 for k, s in cls_m.per_class.items()})

    def figures(self) -> dict[str, float | None]:
        """The headline figures by report name (``gallery_p@5``...), per-class F1 left out."""
        return {name: getattr(self, attr) for attr, name in HEADLINE_NAMES.items()}

    def to_dict(self) -> dict[str, float | None]:
        return {**self.figures(), **{f"{PER_CLASS_F1_PREFIX}{k}": v for k, v in self.f1_per_class.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeadlineMetrics:
        values = {attr: _opt_float(data.get(name)) for attr, name in HEADLINE_NAMES.items()}
        per_class = {k[len(PER_CLASS_F1_PREFIX):]: float(v) for k, v in data.items()
                     if k.startswith(PER_CLASS_F1_PREFIX) and v is not None}
        return cls(**values, f1_per_class=per_class)

    @staticmethod
    def summarize(runs: Sequence[HeadlineMetrics]) -> dict[str, MeanStd]:
        """Mean and std over runs (seeds) of each figure and each style's F1, by report name."""
        out = {name: MeanStd.of(getattr(r, attr) for r in runs) for attr, name in HEADLINE_NAMES.items()}
        styles = dict.fromkeys(s for r in runs for s in r.f1_per_class)
        out.update({f"{PER_CLASS_F1_PREFIX}{s}": MeanStd.of(r.f1_per_class.get(s) for r in runs) for s in styles})
        return out


@dataclass(frozen=True)
class OpenSetMetrics:
    """Styles never trained on: leave-one-out P@5 among their test takes, k-means purity and NMI."""

    loo_p5: float | None
    purity: float | None
    nmi: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {"loo_p@5": self.loo_p5, "purity": self.purity, "nmi": self.nmi}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OpenSetMetrics:
        return cls(_opt_float(data.get("loo_p@5")), _opt_float(data.get("purity")), _opt_float(data.get("nmi")))

    @staticmethod
    def summarize(runs: Sequence[OpenSetMetrics]) -> dict[str, MeanStd]:
        """Mean and std over runs (seeds) of each figure, by report name."""
        return {"loo_p@5": MeanStd.of(r.loo_p5 for r in runs), "purity": MeanStd.of(r.purity for r in runs),
                "nmi": MeanStd.of(r.nmi for r in runs)}


# -- over seeds -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MeanStd:
    """Mean and sample standard deviation (ddof = 1; 0 for one value) over the measured values."""

    mean: float | None
    std: float | None
    values: tuple[float, ...] = ()

    @property
    def n(self) -> int:
        return len(self.values)

    @classmethod
    def of(cls, values: Iterable[float | None]) -> MeanStd:
        """Missing (None) and NaN values are left out."""
        vals = tuple(float(v) for v in values if v is not None and not math.isnan(float(v)))
        if not vals:
            return cls(None, None)
        std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        return cls(float(np.mean(vals)), std, vals)

    def to_dict(self) -> dict[str, Any]:
        if not self.values:
            return {"mean": None, "std": None, "n": 0}
        return {"mean": self.mean, "std": self.std, "n": self.n, "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MeanStd:
        return cls(_opt_float(data.get("mean")), _opt_float(data.get("std")),
                   tuple(float(v) for v in data.get("values", ())))
