"""``ReindexJob``: embed the store's sequences with one encoder into a new live index version, resumably.

One run:

1. takes the index root's job lock (one job per root, whatever the encoder; a second one is refused
   with a message naming the running job), sweeps what a killed save left and repairs the LIVE
   file from the store (``IndexManager.recover``), registers the encoder (its version comes from
   the checkpoint) and takes the encoder's shard lock;
2. claims a job: a ``reindex`` job of the same encoder left ``running`` by a dead process (or
   silent for ``stale_after_s``) is marked ``interrupted``, and the newest interrupted one is
   resumed; otherwise a new job is created with one item per stored sequence;
3. plans from the recorded progress: sequences whose embedding under this encoder was computed
   from their current content hash are skipped (incremental), recorded rows whose shard is gone
   are forgotten and redone, items a killed run finished but did not mark are marked;
4. embeds the rest through the backend in batches; per batch the vectors are written as one
   append-only shard file (atomic), then one store transaction records where each vector lies and
   marks the job items done/failed. A kill between the two leaves an orphan shard (deleted later),
   never a row without a file; rows whose items are still pending (a job from before this rule)
   are marked done by the next plan;
5. builds a new index version from exactly the sequences with current embeddings, verifies it
   (count and ids match the store, sampled vectors find themselves first) and promotes it, which
   retires the old live version; until then the old version keeps serving. If the live version
   already holds exactly these embeddings nothing is rebuilt.

A heartbeat thread keeps the job's heartbeat fresh while a long batch runs. The summary carries the
seconds spent in each stage (read, preprocess and embed summed over the backend's workers; the rest
in this process).
"""
from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from tqdm.auto import tqdm

from encoder.data.dataset import DatasetCache
from encoder.inference import StyleEncoder
from retrieval.index import IndexCorruptError, IndexManager, VectorIndexError, new_version_name
from retrieval.index.errors import IndexBuildError
from retrieval.index.recovery import RECOVERY_HOLDER
from retrieval.index.spec import INDEX_TYPES as FAISS_INDEX_TYPES
from retrieval.index.spec import index_type_spec
from retrieval.jobs.backends import DEFAULT_BATCH_SIZE, EmbeddedBatch, EmbeddingBackend, LocalBackend
from retrieval.jobs.errors import JobError
from retrieval.jobs.ray_backend import RayBackend
from retrieval.jobs.shards import ShardStore
from retrieval.jobs.sources import EmbedRequest, dataset_of
from retrieval.store import EmbeddingRecord, EncoderRecord, JobRecord, MetadataStore, StoreError

log = logging.getLogger(__name__)

JOB_KIND = "reindex"
BACKENDS = ("local", "ray")
INDEX_TYPES = ("auto", *FAISS_INDEX_TYPES)
DEFAULT_STALE_AFTER_S = 120.0
DEFAULT_HEARTBEAT_S = 10.0
ROOT_LOCK_WAIT_S = 5.0    # for an app's recovery at open, which holds the root lock for milliseconds
EMBEDDINGS_DIR = "embeddings"


def spec_for_index_type(index_type: str, n: int, dim: int) -> str | None:
    """FAISS factory string for ``--index-type`` (None = let the index manager choose for ``n``);
    see ``retrieval.index.spec.index_type_spec``."""
    if index_type == "auto":
        return None
    if index_type not in INDEX_TYPES:
        raise JobError(f"unknown index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")
    try:
        return index_type_spec(index_type, n, dim)
    except IndexBuildError as err:                      # too few vectors to train
        raise JobError(str(err)) from None


def encoder_record(encoder: StyleEncoder, checkpoint: Path) -> EncoderRecord:
    """The store's record of a loaded encoder and the checkpoint file it came from."""
    return EncoderRecord(version=encoder.version, checkpoint_hash=file_sha256(checkpoint),
                         checkpoint_path=str(checkpoint.resolve()), model_name=encoder.model_name,
                         embedding_dim=encoder.dim, config=encoder.meta.identity())


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ReindexSummary:
    """What a re-index did. Item counts are the whole job's (including runs it resumed)."""

    job_id: str
    encoder_version: str
    backend: str
    resumed: bool
    total: int
    embedded: int
    skipped: int
    failed: int
    embedded_this_run: int
    elapsed_s: float
    embed_s: float
    indexed: int
    index_version: str | None          # built and promoted by this run; None when the live one was current
    live_version: str | None
    previous_live_version: str | None
    index_spec: str | None
    shards_removed: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    stage_s: dict[str, float] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        """Sequences embedded per second by this run's embedding phase."""
        return self.embedded_this_run / self.embed_s if self.embed_s > 0 else 0.0


class _Heartbeat:
    """Beats a job's heartbeat every ``interval`` seconds from a daemon thread."""

    def __init__(self, store: MetadataStore, job_id: str, interval: float) -> None:
        self._store, self._job_id, self._interval = store, job_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id[:8]}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._store.heartbeat(self._job_id)
            except Exception as exc:  # a missed beat is not fatal; the next one may succeed
                log.warning("job %s: heartbeat failed: %s", self._job_id, exc)

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class ReindexJob:
    """Embed every stored sequence with ``checkpoint`` and publish the result as the live index."""

    def __init__(self, store: MetadataStore, index_manager: IndexManager, dataset: DatasetCache | None,
                 checkpoint: str | Path, backend: EmbeddingBackend | str = "local", *,
                 batch_size: int = DEFAULT_BATCH_SIZE, index_type: str = "auto", ray_address: str | None = None,
                 embeddings_dir: str | Path | None = None, stale_after_s: float = DEFAULT_STALE_AFTER_S,
                 heartbeat_s: float = DEFAULT_HEARTBEAT_S, recall_target: float = 0.95,
                 progress: bool = True, workers: int | None = None, threads: int | None = None,
                 precision: str = "float32") -> None:
        """``dataset``: where to load sequences from (None: each sequence's dataset recorded at
        registration). ``backend``: ``"local"``, ``"ray"`` or a backend object (closed by ``run``).
        ``workers`` x ``threads``: embedding processes (Ray actors) and torch threads each; local
        defaults to this process with one thread. ``precision``: the encoder's (``StyleEncoder``);
        the embeddings are stored under the same encoder version either way."""
        if index_type not in INDEX_TYPES:
            raise JobError(f"unknown index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")
        if batch_size < 1:
            raise JobError(f"batch size must be >= 1, got {batch_size}")
        self.store = store
        self.index_manager = index_manager
        self.dataset = dataset
        self.checkpoint = Path(checkpoint)
        if not self.checkpoint.is_file():
            raise JobError(f"{self.checkpoint}: checkpoint file not found")
        try:
            self.encoder = StyleEncoder.load(self.checkpoint, precision=precision)
        except ValueError as err:
            raise JobError(str(err)) from None
        self.workers, self.threads = workers, threads
        self.backend = self._make_backend(backend, batch_size, ray_address)
        self._stage_s: dict[str, float] = {}
        self.batch_size = batch_size
        self.index_type = index_type
        self.embeddings_dir = Path(embeddings_dir if embeddings_dir is not None
                                   else index_manager.root / EMBEDDINGS_DIR)
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s
        self.recall_target = recall_target
        self.progress = progress

    def _make_backend(self, backend: EmbeddingBackend | str, batch_size: int,
                      ray_address: str | None) -> EmbeddingBackend:
        if not isinstance(backend, str):
            return backend
        if backend == "local":
            return LocalBackend(self.checkpoint, batch_size=batch_size, encoder=self.encoder,
                                workers=self.workers or 1, threads=self.threads or 1)
        if backend == "ray":
            return RayBackend(self.checkpoint, batch_size=batch_size, address=ray_address, actors=self.workers,
                              threads=self.threads or 1, precision=self.encoder.precision)
        raise JobError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")

    @property
    def encoder_version(self) -> str:
        return self.encoder.version

    # -- run ------------------------------------------------------------------------------------
    def run(self) -> ReindexSummary:
        """Do (or finish) the job; see the module doc. Raises ``JobError`` when it cannot complete."""
        started = time.perf_counter()
        root_lock = self.index_manager.root_lock()
        try:
            holder = f"a reindex job for encoder {self.encoder_version} (starting)"
            if not root_lock.try_acquire(holder) and not (
                    RECOVERY_HOLDER in root_lock.holder() and root_lock.try_acquire(holder, ROOT_LOCK_WAIT_S)):
                raise JobError(f"another re-index is running on {self.index_manager.root}: {root_lock.holder()}; "
                               f"wait for it to finish or stop it")
            self.index_manager.recover()
            self._register_encoder()
            shards = ShardStore(self.embeddings_dir, self.encoder_version)
            with shards.lock():
                shards.remove_temp_files()
                job, resumed = self._claim_job()
                root_lock.describe(f"reindex job {job.id} for encoder {self.encoder_version}")
                log.info("%s reindex job %s for encoder %s", "resuming" if resumed else "starting", job.id,
                         self.encoder_version)
                with _Heartbeat(self.store, job.id, self.heartbeat_s):
                    return self._run_claimed(job, resumed, shards, started)
        finally:
            root_lock.release()
            self.backend.close()

    def _run_claimed(self, job: JobRecord, resumed: bool, shards: ShardStore, started: float) -> ReindexSummary:
        """Plan, embed, publish and clean up; the job ends completed, failed or interrupted."""
        try:
            with self._timed("plan"):
                requests = self._plan(job, shards)
            embedded_now, embed_s = self._embed(job, requests, shards)
            self.store.update_job(job.id, message="publishing index")
            previous_live, built, spec, indexed = self._publish(job, shards)
            removed = shards.remove_unreferenced({e.shard for e in self.store.get_embeddings(self.encoder_version)})
        except KeyboardInterrupt:
            self._finish_quietly(job.id, "interrupted", "stopped by the user")
            raise
        except Exception as exc:
            self._finish_quietly(job.id, "failed", str(exc))
            raise
        counts = self.store.job_item_counts(job.id)
        live = self.index_manager.live_version()
        self.store.finish_job(job.id, "completed", message=(
            f"live {live}; embedded {counts['done']}, skipped {counts['skipped']}, failed {counts['failed']}"))
        return ReindexSummary(
            job_id=job.id, encoder_version=self.encoder_version, backend=self.backend.name, resumed=resumed,
            total=sum(counts.values()), embedded=counts["done"], skipped=counts["skipped"],
            failed=counts["failed"], embedded_this_run=embedded_now, elapsed_s=time.perf_counter() - started,
            embed_s=embed_s, indexed=indexed, index_version=built, live_version=live,
            previous_live_version=previous_live, index_spec=spec, shards_removed=len(removed),
            errors=self.store.job_item_errors(job.id), stage_s={k: round(v, 3) for k, v in self._stage_s.items()})

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        """Add the seconds spent inside to ``stage`` of the summary's ``stage_s``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._stage_s[stage] = self._stage_s.get(stage, 0.0) + time.perf_counter() - start

    def _finish_quietly(self, job_id: str, status: str, message: str) -> None:
        try:
            self.store.finish_job(job_id, status, message=message)
        except Exception as exc:  # the original error matters more; a dead job is found by its heartbeat
            log.warning("job %s: could not record status %s: %s", job_id, status, exc)

    # -- encoder and job --------------------------------------------------------------------------
    def _register_encoder(self) -> EncoderRecord:
        """Register the checkpoint's encoder (an already registered version is reused as it is: the
        version is a hash of everything that changes the embeddings)."""
        existing = self.store.get_encoder(self.encoder_version)
        if existing is not None:
            if existing.embedding_dim != self.encoder.dim:
                raise JobError(f"encoder {self.encoder_version} is registered with dimension "
                               f"{existing.embedding_dim}, the checkpoint has {self.encoder.dim}")
            return existing
        return self.store.register_encoder(encoder_record(self.encoder, self.checkpoint))

    def _params(self) -> dict[str, object]:
        return {"checkpoint": str(self.checkpoint.resolve()),
                "dataset": str(self.dataset.root.resolve()) if self.dataset is not None else None,
                "backend": self.backend.name, "batch_size": self.batch_size, "index_type": self.index_type,
                "workers": self.workers, "threads": self.threads,
                "embeddings_dir": str(self.embeddings_dir.resolve()), "host": socket.gethostname(),
                "index_root": str(self.index_manager.root.resolve()),
                "pid": os.getpid()}

    def _claim_job(self) -> tuple[JobRecord, bool]:
        """Resume this encoder's interrupted (or dead) reindex job, or create a new one."""
        self.store.interrupt_stale_jobs(timedelta(seconds=self.stale_after_s))
        for job in self.store.list_jobs(kind=JOB_KIND, status="running", limit=None):
            if job.encoder_version != self.encoder_version:
                if self._same_root_same_host(job):      # we hold the root lock: its worker is gone
                    self.store.finish_job(job.id, "interrupted", message="its worker process is gone")
                continue
            if not self._worker_is_dead(job):
                raise JobError(f"reindex job {job.id} for encoder {self.encoder_version} is running on "
                               f"{job.params.get('host')} (pid {job.params.get('pid')}, last heartbeat "
                               f"{job.heartbeat.isoformat(timespec='seconds')})")
            self.store.finish_job(job.id, "interrupted", message="its worker process is gone")
        interrupted = [j for j in self.store.list_jobs(kind=JOB_KIND, status="interrupted", limit=None)
                       if j.encoder_version == self.encoder_version]
        if interrupted:
            job = interrupted[0]
            self._abandon_index_build(job)
            self.store.resume_job(job.id)
            params = {**job.params, **self._params(), "resumes": int(job.params.get("resumes", 0)) + 1}
            return self.store.update_job(job.id, params=params, message="resumed"), True
        job = self.store.create_job(JOB_KIND, encoder_version=self.encoder_version, params=self._params(),
                                    sequence_ids=self.store.sequence_ids())
        return job, False

    def _same_root_same_host(self, job: JobRecord) -> bool:
        return (job.params.get("host") == socket.gethostname()
                and job.params.get("index_root") == str(self.index_manager.root.resolve()))

    def _worker_is_dead(self, job: JobRecord) -> bool:
        """A running job of this encoder on this host is dead: we hold its root or shard lock, or its
        pid is gone."""
        if job.params.get("host") != socket.gethostname():
            return False
        if self._same_root_same_host(job):
            return True
        if job.params.get("embeddings_dir") == str(self.embeddings_dir.resolve()):
            return True
        try:
            os.kill(int(job.params.get("pid", -1)), 0)
        except (ProcessLookupError, ValueError):
            return True
        except PermissionError:
            return False
        return False

    def _abandon_index_build(self, job: JobRecord) -> None:
        """An index version a killed run was still building is marked failed and its files removed."""
        if job.index_version is None:
            return
        record = self.store.get_index_version(job.index_version)
        if record is not None and record.status == "building":
            self.store.update_index_version(job.index_version, status="failed", message="build interrupted")
            self.index_manager.delete(job.index_version)

    # -- plan -------------------------------------------------------------------------------------
    def _plan(self, job: JobRecord, shards: ShardStore) -> list[EmbedRequest]:
        """Reconcile the job with the store and return the sequences still to embed."""
        enc = self.encoder_version
        scope = self.store.sequence_ids()
        if not scope:
            raise JobError("the store holds no sequences; register a dataset with posestyle index")
        self.store.add_job_items(job.id, scope)
        total = sum(self.store.job_item_counts(job.id).values())
        self.store.update_job(job.id, total=total, message="planning")

        broken = shards.check(self.store.get_embeddings(enc), self.encoder.dim)
        if broken:
            log.warning("%d recorded embeddings of encoder %s point to missing or damaged shards (e.g. %s); "
                        "they are embedded again", len(broken), enc, next(iter(broken.values())))
            self.store.delete_embeddings(enc, broken)

        needing = set(self.store.sequences_needing_embedding(enc))
        settled = [s for s in self.store.job_items(job.id, "pending") if s not in needing]
        if settled:
            created = {e.sequence_id: e.created for e in self.store.get_embeddings(enc, settled)}
            done_earlier = {s for s in settled if created.get(s) is not None and created[s] >= job.started}
            self.store.record_job_progress(job.id, done=sorted(done_earlier),
                                           skipped=[s for s in settled if s not in done_earlier])

        failed_before = set(self.store.job_items(job.id, "failed"))
        work = [s for s in scope if s in needing and s not in failed_before]
        contents = self.store.content_of(work)
        preferred_root = str(self.dataset.root.resolve()) if self.dataset is not None else None
        requests: list[EmbedRequest] = []
        unresolved: dict[str, str] = {}
        for sequence_id in work:
            if sequence_id not in contents:
                continue  # deleted since the plan started
            content_hash, extra = contents[sequence_id]
            root = dataset_of(sequence_id, content_hash, extra, self.dataset, preferred_root)
            if root is None:
                unresolved[sequence_id] = (f"{sequence_id}: no known dataset holds this sequence; pass --data "
                                           "with the dataset cache it was ingested into")
            else:
                requests.append(EmbedRequest(sequence_id, root, content_hash))
        if unresolved:
            self.store.record_job_progress(job.id, failed=unresolved)
        return requests

    # -- embed ------------------------------------------------------------------------------------
    def _embed(self, job: JobRecord, requests: list[EmbedRequest], shards: ShardStore) -> tuple[int, float]:
        """Embed ``requests`` batch by batch; returns (vectors written, seconds)."""
        self.store.update_job(job.id, message=f"embedding {len(requests)} sequences")
        by_id = {r.sequence_id: r for r in requests}
        answered: set[str] = set()
        embedded = 0
        started = time.perf_counter()
        bar = tqdm(total=len(requests), desc=f"embed {self.encoder_version}", unit="seq", disable=not self.progress,
                   dynamic_ncols=True)
        try:
            for batch in self.backend.embed_batches(requests):
                embedded += self._record_batch(job, batch, by_id, answered, shards)
                for stage, seconds in batch.seconds.items():
                    self._stage_s[stage] = self._stage_s.get(stage, 0.0) + seconds
                bar.update(len(batch.ids) + len(batch.errors))
                bar.set_postfix(failed=len(answered) - embedded, refresh=False)
        finally:
            bar.close()
        unanswered = {s: f"{s}: the {self.backend.name} backend returned no result" for s in by_id if s not in answered}
        if unanswered:
            self.store.record_job_progress(job.id, failed=unanswered)
        return embedded, time.perf_counter() - started

    def _record_batch(self, job: JobRecord, batch: EmbeddedBatch, by_id: dict[str, EmbedRequest],
                      answered: set[str], shards: ShardStore) -> int:
        """Shard file first, then the store's rows and the job items in one transaction."""
        ids, vectors, errors = batch
        fresh = [i for i, s in enumerate(ids) if s in by_id and s not in answered]
        if len(fresh) != len(ids) or vectors.shape != (len(ids), self.encoder.dim):
            raise JobError(f"the {self.backend.name} backend returned a malformed batch: {len(ids)} ids, "
                           f"vectors {vectors.shape}, {len(ids) - len(fresh)} unknown or repeated ids")
        failed = {s: e for s, e in errors.items() if s in by_id and s not in answered and s not in ids}
        records: list[EmbeddingRecord] = []
        if ids:
            with self._timed("write_shards"):
                key = shards.write(vectors)
            records = [EmbeddingRecord(sequence_id=s, content_hash=by_id[s].content_hash, shard=key, row=row)
                       for row, s in enumerate(ids)]
        with self._timed("record"):
            self.store.record_embedded_batch(job.id, self.encoder_version, records, failed=failed)
        answered.update(ids)
        answered.update(failed)
        return len(ids)

    # -- publish ----------------------------------------------------------------------------------
    def _publish(self, job: JobRecord, shards: ShardStore) -> tuple[str | None, str | None, str | None, int]:
        """Build, verify and promote an index of every sequence with a current embedding.

        Returns (previous live version, version built or None, its spec, vectors indexed)."""
        enc = self.encoder_version
        stale = set(self.store.sequences_needing_embedding(enc))
        expected = [s for s in self.store.sequence_ids() if s not in stale]
        if not expected:
            raise JobError(f"no sequence has an embedding under encoder {enc}; nothing to index")
        records = sorted(self.store.get_embeddings(enc, expected), key=lambda r: r.sequence_id)
        try:
            previous_live = self.index_manager.live_version()
        except IndexCorruptError:
            previous_live = None
        if self._live_is_current(previous_live, records):
            log.info("live index %s already holds these %d embeddings; nothing to rebuild", previous_live,
                     len(records))
            return previous_live, None, None, len(records)
        with self._timed("gather"):
            vectors = shards.gather(records, self.encoder.dim)
        ids = [r.sequence_id for r in records]
        spec = spec_for_index_type(self.index_type, len(ids), self.encoder.dim)
        version = new_version_name(enc)
        self.store.update_job(job.id, index_version=version, message=f"building index {version}")
        try:
            with self._timed("build"):
                built = self.index_manager.build(version, vectors, ids, encoder_version=enc, spec=spec,
                                                 recall_target=self.recall_target)
            with self._timed("verify"):
                report = self.index_manager.verify(version, expected_ids=expected)
            if not report.ok:
                raise JobError(report.summary())
            with self._timed("promote"):
                self.index_manager.promote(version)
        except (VectorIndexError, StoreError) as exc:
            raise JobError(f"index {version}: {exc}") from exc
        return previous_live, version, built.spec, len(ids)

    def _live_is_current(self, live: str | None, records: list[EmbeddingRecord]) -> bool:
        """True when the live version is this encoder's and was built after, and from exactly, ``records``."""
        if live is None:
            return False
        record = self.store.get_index_version(live)
        if record is None or record.encoder_version != self.encoder_version or record.created is None:
            return False
        if any(r.created is None or r.created > record.created for r in records):
            return False
        try:
            held = self.index_manager.open(live).sequence_ids
        except IndexCorruptError:
            return False
        return sorted(held) == [r.sequence_id for r in records]
