"""``IndexManager``: build -> verify -> promote index versions under ``<root>/indexes/`` and open the live one.

The store says which version is live (its transaction is the commit point of a promotion). The
``LIVE`` file in ``<root>/indexes/`` mirrors it for people and tools: it is replaced atomically
(temp file + fsync + rename) inside the store transaction that marks the version ``live``, and
``recover`` (run by every job and when the app opens the root) rewrites it from the store after a
kill between the two, and sweeps temp leftovers. If the live version fails to load (corrupt,
truncated, missing), ``open_live`` logs a warning and serves the newest earlier verified version.
"""
from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from retrieval.index.crashpoints import crash_point
from retrieval.index.errors import IndexBuildError, IndexCorruptError, IndexNotVerifiedError, NoLiveIndexError
from retrieval.index.recovery import RECOVERY_HOLDER, RecoveryReport, RootLock, sweep_temp_leftovers
from retrieval.index.searcher import VectorSearcher
from retrieval.index.spec import build_faiss_index, choose_index_spec, index_kind, normalize_rows, tune_search_params
from retrieval.index.storage import (
    TEMP_PREFIX,
    check_version_name,
    fsync_dir,
    load_index_version,
    save_index_version,
    write_bytes_durably,
)
from retrieval.store import IndexVersionRecord, MetadataStore, UnknownRecordError

log = logging.getLogger(__name__)

LIVE_FILE = "LIVE"
VERIFY_TOP = 5
TIE_TOLERANCE = 1e-5


@dataclass
class VerificationReport:
    """Outcome of ``IndexManager.verify``: ``ok`` or the list of problems found."""

    version: str
    ok: bool
    count: int = 0
    expected_count: int = 0
    self_hit_rate: float = 0.0
    required_self_hit_rate: float = 1.0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        if self.ok:
            return (f"index {self.version} verified: {self.count} vectors, self top-1 rate "
                    f"{self.self_hit_rate:.3f}")
        return f"index {self.version} failed verification: {'; '.join(self.problems)}"


def new_version_name(encoder_version: str) -> str:
    """A fresh name sorting by creation time: ``<UTC timestamp, us>-<4 random hex>-<encoder>``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    tail = "".join(c if c.isalnum() or c in "._-" else "-" for c in encoder_version)[:40]
    name = f"{stamp}-{uuid.uuid4().hex[:4]}"
    return f"{name}-{tail}" if tail else name


class IndexManager:
    """Owns ``<root>/indexes/<version>/`` directories and the ``LIVE`` pointer; records lifecycle in the store."""

    def __init__(self, root: str | Path, store: MetadataStore, *, use_gpu: bool | None = None) -> None:
        """``root`` is the data dir (``index_data``); ``use_gpu`` None = GPU when FAISS sees one."""
        self.root = Path(root)
        self.indexes_dir = self.root / "indexes"
        self.store = store
        self.use_gpu = use_gpu

    def version_dir(self, version: str) -> Path:
        return self.indexes_dir / check_version_name(version)

    @property
    def live_file(self) -> Path:
        return self.indexes_dir / LIVE_FILE

    # -- build --------------------------------------------------------------------------------
    def build(self, version: str, embeddings: np.ndarray, sequence_ids: Sequence[str], *, encoder_version: str,
              spec: str | None = None, recall_target: float = 0.95, seed: int = 0) -> IndexVersionRecord:
        """Build, tune and save a new index version from ``embeddings`` (n, d) whose rows belong to
        ``sequence_ids``; registered in the store as ``building`` and left there until ``verify``.

        ``spec`` defaults to ``choose_index_spec(n, d, recall_target)``. A failure after registration
        marks the version ``failed`` with the reason."""
        check_version_name(version)
        vectors, ids = self._check_build_input(embeddings, sequence_ids)
        n, dim = vectors.shape
        encoder = self.store.get_encoder(encoder_version)
        if encoder is None:
            raise UnknownRecordError("encoder", encoder_version)
        if encoder.embedding_dim != dim:
            raise IndexBuildError(f"embeddings have dimension {dim} but encoder {encoder_version} "
                                  f"produces {encoder.embedding_dim}")
        spec = spec or choose_index_spec(n, dim, recall_target)
        directory = self.version_dir(version)
        if directory.exists():
            raise IndexBuildError(f"{directory}: index version directory already exists")
        self.store.create_index_version(version, encoder_version=encoder_version, spec=spec, dimension=dim,
                                        count=n, path=directory)
        try:
            index = build_faiss_index(spec, vectors, seed=seed)
            params, recall = tune_search_params(index, vectors, recall_target, seed=seed)
            save_index_version(directory, index, ids, {
                "version": version, "encoder_version": encoder_version, "spec": spec,
                "kind": index_kind(index), "metric": "inner_product", "normalized": True,
                "recall_target": recall_target, "tuned_recall_at_10": round(recall, 4),
                "search_params": params.to_json(),
            })
        except BaseException as exc:
            self.store.update_index_version(version, status="failed", message=f"build failed: {exc}")
            raise
        log.info("built index %s (%s, %d x %d, params %s, recall@10 %.3f)", version, spec, n, dim,
                 params.to_json(), recall)
        record = self.store.get_index_version(version)
        assert record is not None
        return record

    @staticmethod
    def _check_build_input(embeddings: np.ndarray, sequence_ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        array = np.asarray(embeddings)
        if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
            raise IndexBuildError(f"embeddings must be a non-empty (n, d) array, got shape {array.shape}")
        if not np.issubdtype(array.dtype, np.number):
            raise IndexBuildError(f"embeddings must be numeric, got dtype {array.dtype}")
        ids = [str(s) for s in sequence_ids]
        if len(ids) != array.shape[0]:
            raise IndexBuildError(f"{array.shape[0]} embeddings but {len(ids)} sequence ids")
        if len(set(ids)) != len(ids):
            raise IndexBuildError("sequence ids repeat")
        if not np.isfinite(array).all():
            bad = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
            raise IndexBuildError(f"embedding of {ids[bad]!r} contains NaN or inf")
        norms = np.linalg.norm(array.astype(np.float64), axis=1)
        if (norms < 1e-12).any():
            raise IndexBuildError(f"embedding of {ids[int(np.flatnonzero(norms < 1e-12)[0])]!r} is all zeros")
        return normalize_rows(array), ids

    # -- open ---------------------------------------------------------------------------------
    def open(self, version: str) -> VectorSearcher:
        """Load ``version`` (checksums verified); ``IndexCorruptError`` if it is damaged or missing."""
        return VectorSearcher(load_index_version(self.version_dir(version)), use_gpu=self.use_gpu)

    def versions_on_disk(self) -> list[str]:
        """Complete version directories under ``indexes/`` (temp dirs excluded), sorted."""
        if not self.indexes_dir.is_dir():
            return []
        return sorted(p.name for p in self.indexes_dir.iterdir() if p.is_dir() and not p.name.startswith(TEMP_PREFIX))

    # -- verify -------------------------------------------------------------------------------
    def verify(self, version: str, *, expected_ids: Collection[str] | None = None, sample_size: int = 50,
               min_self_hit_rate: float | None = None, seed: int = 0) -> VerificationReport:
        """Check a built version before it may go live, and record the verdict in the store.

        Checks: files load with valid checksums; the index holds exactly the expected sequences
        (``expected_ids``, else those the store has embeddings for under the index's encoder, else
        every sequence in the store), all known to the store; and ``sample_size`` stored vectors find
        themselves as top-1 (ties with identical vectors count) at a rate of at least
        ``min_self_hit_rate`` (default 1.0 for exact indexes, the build's recall target otherwise).
        Sets status ``verified`` or ``failed`` (a live version's status is left alone)."""
        record = self.store.get_index_version(version)
        if record is None:
            raise UnknownRecordError("index version", version)
        report = VerificationReport(version=version, ok=False)
        try:
            searcher = self.open(version)
        except IndexCorruptError as exc:
            report.problems.append(str(exc))
            return self._record_verdict(record, report)
        report.count = searcher.count
        if searcher.encoder_version != record.encoder_version:
            report.problems.append(f"manifest encoder {searcher.encoder_version!r} differs from the store's "
                                   f"{record.encoder_version!r}")
        self._check_membership(searcher, record, expected_ids, report)
        self._check_self_hits(searcher, report, sample_size, min_self_hit_rate, seed)
        report.ok = not report.problems
        return self._record_verdict(record, report)

    def _check_membership(self, searcher: VectorSearcher, record: IndexVersionRecord,
                          expected_ids: Collection[str] | None, report: VerificationReport) -> None:
        known = set(self.store.sequence_ids())
        if expected_ids is None:
            expected_ids = self.store.embedded_sequence_ids(record.encoder_version) or known
        expected = set(expected_ids)
        held = set(searcher.sequence_ids)
        report.expected_count = len(expected)
        if searcher.count != len(expected):
            report.problems.append(f"index holds {searcher.count} sequences, the store expects {len(expected)}")
        missing, extra = sorted(expected - held), sorted(held - expected)
        if missing:
            report.problems.append(f"{len(missing)} expected sequences missing (e.g. {missing[0]!r})")
        if extra:
            report.problems.append(f"{len(extra)} sequences not expected (e.g. {extra[0]!r})")
        unknown = held - known
        if unknown:
            report.problems.append(f"{len(unknown)} indexed sequences unknown to the store "
                                   f"(e.g. {sorted(unknown)[0]!r})")

    @staticmethod
    def _check_self_hits(searcher: VectorSearcher, report: VerificationReport, sample_size: int,
                         min_rate: float | None, seed: int) -> None:
        exact = searcher.kind == "flat"
        required = min_rate if min_rate is not None else (
            1.0 if exact else float(searcher.manifest.get("recall_target", 0.95)))
        report.required_self_hit_rate = required
        if searcher.count == 0:
            report.problems.append("index is empty")
            return
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(searcher.count, min(sample_size, searcher.count), replace=False))
        hits = searcher.search(searcher.vectors(sample), min(VERIFY_TOP, searcher.count))
        found = 0
        for row, position in enumerate(sample):
            ranks = np.flatnonzero(hits.positions[row] == position)
            if ranks.size and hits.scores[row, ranks[0]] >= hits.scores[row, 0] - TIE_TOLERANCE:
                found += 1
        report.self_hit_rate = found / sample.size
        if report.self_hit_rate < required:
            report.problems.append(f"only {found} of {sample.size} sampled vectors find themselves as top-1 "
                                   f"(rate {report.self_hit_rate:.3f} < {required:.3f})")

    def _record_verdict(self, record: IndexVersionRecord, report: VerificationReport) -> VerificationReport:
        if record.status == "live":
            if not report.ok:
                log.warning("live %s", report.summary())
            return report
        status = "verified" if report.ok else "failed"
        self.store.update_index_version(record.version, status=status,
                                        message=None if report.ok else report.summary())
        (log.info if report.ok else log.warning)(report.summary())
        return report

    # -- promote ------------------------------------------------------------------------------
    def promote(self, version: str) -> IndexVersionRecord:
        """Make a verified ``version`` live: the store marks it live (retiring the previous one) and the
        ``LIVE`` file is swapped in the same transaction. Unverified versions are refused."""
        record = self.store.get_index_version(version)
        if record is None:
            raise UnknownRecordError("index version", version)
        if record.status not in ("verified", "retired", "live") or record.verified_at is None:
            raise IndexNotVerifiedError(f"index version {version!r} is {record.status!r}; verify it before "
                                        f"promoting")
        if not (self.version_dir(version) / "manifest.json").is_file():
            raise IndexCorruptError(self.version_dir(version), "index version directory is missing")
        self.indexes_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.indexes_dir / f"{TEMP_PREFIX}{LIVE_FILE}-{uuid.uuid4().hex}"
        write_bytes_durably(tmp, f"{version}\n".encode("utf-8"))
        crash_point("pointer-temp-written")

        def swap_pointer() -> None:
            os.replace(tmp, self.live_file)
            fsync_dir(self.indexes_dir)
            crash_point("pointer-swapped")

        try:
            promoted = self.store.set_live(version, before_commit=swap_pointer)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("index %s is live", version)
        return promoted

    def live_version(self) -> str | None:
        """The store's live version (None when none is); the ``LIVE`` file only mirrors it."""
        return self.store.live_version()

    def pointer_file_version(self) -> str | None:
        """What the ``LIVE`` file says (None when it is missing); ``IndexCorruptError`` when unreadable."""
        try:
            name = self.live_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(self.live_file, f"live pointer cannot be read ({exc})") from None
        try:
            return check_version_name(name)
        except IndexBuildError:
            raise IndexCorruptError(self.live_file, f"live pointer names no valid version ({name[:40]!r})") from None

    # -- recovery -----------------------------------------------------------------------------
    def root_lock(self) -> RootLock:
        """The lock one job at a time holds on this root (whatever its encoder)."""
        return RootLock(self.indexes_dir)

    def recover(self) -> RecoveryReport:
        """Sweep temp leftovers and rewrite a ``LIVE`` file that disagrees with the store.

        Call only while holding ``root_lock()`` (a running job's temp files are not leftovers)."""
        report = RecoveryReport(removed=sweep_temp_leftovers(self.indexes_dir))
        live = self.store.live_version()
        try:
            report.live_file_was = self.pointer_file_version()
        except IndexCorruptError:
            report.live_file_was = "(unreadable)"
        report.live_file_now = report.live_file_was
        if report.live_file_was != live:
            if live is None:
                self.live_file.unlink(missing_ok=True)
            else:
                self._write_pointer(live)
            report.live_file_now = live
            log.warning("LIVE file said %s but the store has %s live; LIVE rewritten from the store",
                        report.live_file_was, live)
        return report

    def recover_if_idle(self) -> RecoveryReport | None:
        """``recover`` when no job holds the root (an app opening it); None when one does."""
        if not self.indexes_dir.is_dir():
            return None
        lock = self.root_lock()
        if not lock.try_acquire(RECOVERY_HOLDER):
            return None
        try:
            return self.recover()
        finally:
            lock.release()

    def _write_pointer(self, version: str) -> None:
        tmp = self.indexes_dir / f"{TEMP_PREFIX}{LIVE_FILE}-{uuid.uuid4().hex}"
        try:
            write_bytes_durably(tmp, f"{version}\n".encode("utf-8"))
            os.replace(tmp, self.live_file)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(self.indexes_dir)

    def open_live(self) -> VectorSearcher:
        """A searcher over the live version; if that is corrupt or missing, the newest earlier verified
        version (with ``fallback_from`` / ``fallback_reason`` set and a warning logged)."""
        live = self.live_version()
        if live is None:
            raise NoLiveIndexError("no index version is live; build, verify and promote one")
        try:
            return self.open(live)
        except IndexCorruptError as exc:
            return self._fallback(live, exc)

    def _fallback(self, live: str | None, problem: IndexCorruptError) -> VectorSearcher:
        live_record = self.store.get_index_version(live) if live else None
        candidates = [
            r for r in self.store.list_index_versions(status=("verified", "retired", "live"))
            if r.version != live and r.verified_at is not None
            and (live_record is None or live_record.created is None or r.created is None
                 or r.created <= live_record.created)
        ]
        for candidate in candidates:
            try:
                searcher = self.open(candidate.version)
            except IndexCorruptError as exc:
                log.warning("fallback index %s is unusable too: %s", candidate.version, exc)
                continue
            searcher.fallback_from = live
            searcher.fallback_reason = str(problem)
            log.warning("live index %s cannot be served (%s); serving %s instead", live, problem, candidate.version)
            return searcher
        raise NoLiveIndexError(f"live index {live} cannot be served ({problem}) and no earlier verified version loads")

    # -- housekeeping -------------------------------------------------------------------------
    def delete(self, version: str) -> None:
        """Remove a non-live version's files (its store row stays, as history)."""
        record = self.store.get_index_version(version)
        if (record is not None and record.status == "live") or self._pointer_names(version):
            raise IndexBuildError(f"index version {version!r} is live and cannot be deleted")
        shutil.rmtree(self.version_dir(version), ignore_errors=True)

    def _pointer_names(self, version: str) -> bool:
        try:
            return self.live_file.read_text(encoding="utf-8").strip() == version
        except (OSError, UnicodeDecodeError):
            return False
