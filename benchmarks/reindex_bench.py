"""Re-index throughput bench: a large synthetic walk corpus, local and Ray-cluster runs, per-stage times.

The corpus is ``n`` distinct walks: a pool of demo walks (``encoder.data.demo``), each copy moved,
scaled, time-shifted and jittered so every walk has its own content hash. It is written once as a
dataset cache under the work folder and reused by later runs (the manifest is written last, so an
interrupted write is simply continued). Runs use whatever encoder checkpoint they are given, so the
figures follow the default model as it changes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from encoder.data.atomic import atomic_write_bytes
from encoder.data.dataset import ARRAYS_DIR, FORMAT_VERSION, MANIFEST_NAME, DatasetCache, DatasetItem, dataset_version
from encoder.data.sequence import PoseSequence

POOL_SIZE = 500
START_ATTEMPTS = 3
STAGES = ("read", "preprocess", "embed", "write_shards", "record", "build", "verify", "promote")


def available_cores() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _perturbed(base: PoseSequence, rng: np.random.Generator) -> PoseSequence:
    """A distinct walk from ``base``: random time shift, scale, translation and per-joint jitter."""
    start = int(rng.integers(0, max(1, base.num_frames // 8)))
    joints = base.joints[start:].copy()
    confidence = base.confidence[start:].copy()
    scale = float(rng.uniform(0.85, 1.15))
    centre = joints.reshape(-1, joints.shape[-1]).mean(axis=0)
    jitter = rng.normal(0.0, 0.004 * float(np.ptp(joints[..., 1])) + 1e-3, joints.shape).astype(np.float32)
    shift = rng.uniform(-40.0, 40.0, joints.shape[-1]).astype(np.float32)
    joints = (joints - centre) * scale + centre + shift + jitter
    joints[confidence <= 0] = 0.0
    return PoseSequence(joints=joints, confidence=confidence, fps=base.fps, skeleton=base.skeleton)


def make_walk_corpus(
    root: str | Path,
    n: int,
    *,
    seed: int = 0,
    input_dims: int = 2,
    pool: int = POOL_SIZE,
    progress: Callable[[int], None] | None = None,
) -> DatasetCache:
    """A dataset cache of ``n`` distinct synthetic walks made from ``pool`` demo walks at ``root``
    (reused if already complete)."""
    from encoder.data.demo import generate_demo_corpus

    root = Path(root)
    if (root / MANIFEST_NAME).is_file():
        cache = DatasetCache.open(root)
        if len(cache) == n:
            return cache
    arrays = root / ARRAYS_DIR
    arrays.mkdir(parents=True, exist_ok=True)
    view = "2d" if input_dims == 2 else "3d"
    bases = generate_demo_corpus(min(pool, n), seed=seed, views=(view,), progress=False)
    rng = np.random.default_rng([seed, 17])
    items: list[DatasetItem] = []
    for i in range(n):
        base = bases[i % len(bases)]
        seq = base if i < len(bases) else _perturbed(base, rng)
        content_hash = seq.content_hash()
        path = arrays / f"{content_hash}.npz"
        if not path.is_file():  # a fixture, not user data: plain write, then rename (no fsync per file)
            tmp = path.with_name(f".{path.name}.tmp")
            with open(tmp, "wb") as handle:
                np.savez(handle, **seq.with_(name="", source="", label=None, metadata={}).to_arrays())
            os.replace(tmp, path)
        meta = {k: base.metadata[k] for k in ("collection", "season", "model_id", "tags") if k in base.metadata}
        items.append(
            DatasetItem(
                name=f"walk-{i:07d}",
                source=f"bench:walk/{i}",
                content_hash=content_hash,
                label=base.label,
                metadata={**meta, "view": view, "pool_walk": base.name},
                frames=seq.num_frames,
                fps=float(seq.fps),
                dims=seq.dims,
                skeleton=seq.skeleton,
            )
        )
        if progress is not None and (i + 1) % 1000 == 0:
            progress(i + 1)
    version = dataset_version(items)
    manifest = {
        "format_version": FORMAT_VERSION,
        "version": version,
        "previous_version": None,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source_paths": [],
        "label_source": {"kind": "demo styles"},
        "person": "main",
        "items": [asdict(it) for it in items],
        "errors": [],
    }
    atomic_write_bytes(root / MANIFEST_NAME, (json.dumps(manifest) + "\n").encode("utf-8"))
    return DatasetCache.open(root)


# -- a real local Ray cluster ---------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _processes_mentioning(marker: str) -> set[int]:
    """Pids whose command line contains ``marker``, with all their descendants (from /proc)."""
    parent_of: dict[int, int] = {}
    roots: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode("utf-8", "replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        parent_of[pid] = int(stat.rpartition(")")[2].split()[1])
        if marker in cmdline:
            roots.add(pid)
    ancestors, pid = set(), os.getpid()
    while pid > 1 and pid in parent_of:  # never this process or what started it
        ancestors.add(pid)
        pid = parent_of[pid]
    found = roots - ancestors
    grew = True
    while grew:
        children = {pid for pid, ppid in parent_of.items() if ppid in found} - found
        found |= children
        grew = bool(children)
    return found


class LocalRayCluster:
    """``ray start --head`` plus ``nodes - 1`` worker nodes (``ray start --address``) on this machine,
    ``cpus_per_node`` CPUs each; on exit exactly the processes of this cluster are stopped (found by
    its own temp folder), never other Ray instances on the machine."""

    def __init__(
        self,
        temp_dir: str | Path,
        *,
        nodes: int = 2,
        cpus_per_node: int = 1,
        object_store_bytes: int = 150 * 1024 * 1024,
    ) -> None:
        self.temp_dir = Path(temp_dir).resolve()
        self.nodes, self.cpus_per_node, self.object_store_bytes = nodes, cpus_per_node, object_store_bytes
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.start_s = 0.0
        self.ray = str(Path(sys.executable).with_name("ray"))

    def _ray_start(self, *args: str) -> None:
        # Ray runs its workers at nice 15 by default; the local backend's workers run at 0. The head
        # node may start in token-auth mode while a joining node and the driver default to none
        # ("InvalidAuthToken"): this cluster listens on 127.0.0.1 only, so every part runs without.
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_worker_niceness": "0",
               "RAY_AUTH_MODE": "disabled"}
        common = [
            "--num-cpus",
            str(self.cpus_per_node),
            "--object-store-memory",
            str(self.object_store_bytes),
            "--disable-usage-stats",
        ]
        done = subprocess.run([self.ray, "start", *args, *common], env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed: {(done.stderr or done.stdout)[-400:]}")

    def __enter__(self) -> "LocalRayCluster":
        start = time.perf_counter()
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._ray_start("--head", "--port", str(self.port), "--node-ip-address", "127.0.0.1",
                                "--include-dashboard=false", "--temp-dir", str(self.temp_dir))
                for _ in range(self.nodes - 1):
                    self._ray_start("--address", self.address, "--node-ip-address", "127.0.0.1")
                break
            except RuntimeError:  # ray start gives a raylet 30 s to register: a busy machine can miss that
                self.stop()
                if attempt == START_ATTEMPTS:
                    raise
            except BaseException:
                self.stop()
                raise
        self.start_s = time.perf_counter() - start
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM this cluster's processes, SIGKILL what is left after 15 s."""
        import signal

        pids = _processes_mentioning(str(self.temp_dir))
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 0.0)):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while wait and time.monotonic() < deadline and _alive(pids):
                time.sleep(0.5)
            pids = _alive(pids)
            if not pids:
                return


def _alive(pids: set[int]) -> set[int]:
    """The pids still running (zombies count as gone)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


# -- runs ------------------------------------------------------------------------------------------------
def reindex_once(
    dataset: DatasetCache,
    checkpoint: Path,
    root: Path,
    *,
    backend: str = "local",
    workers: int | None = None,
    threads: int | None = None,
    ray_address: str | None = None,
    batch_size: int | None = None,
    index_type: str = "auto",
    progress: bool = False,
    precision: str = "float32",
) -> dict[str, Any]:
    """One ``ReindexJob`` into a fresh store at ``root``; its figures, stage times and machine load."""
    from retrieval.index import IndexManager
    from retrieval.jobs import DEFAULT_BATCH_SIZE, ReindexJob, register_dataset
    from retrieval.store import MetadataStore

    shutil.rmtree(root, ignore_errors=True)
    cold = dataset.evict(dataset.names)   # a cold start, as a re-index of an archive nobody just read
    load_before = load_average()
    with MetadataStore.open(root / "metadata.db") as store:
        start = time.perf_counter()
        register_dataset(store, dataset)
        register_s = time.perf_counter() - start
        job = ReindexJob(
            store,
            IndexManager(root, store, use_gpu=False),
            dataset,
            checkpoint,
            backend,
            batch_size=batch_size or DEFAULT_BATCH_SIZE,
            index_type=index_type,
            ray_address=ray_address,
            workers=workers,
            threads=threads,
            progress=progress,
            precision=precision,
        )
        summary = job.run()
    shutil.rmtree(root, ignore_errors=True)
    return {
        "backend": backend,
        "workers": workers,
        "threads": threads,
        "precision": precision,
        "ray_address": ray_address,
        "batch_size": batch_size or DEFAULT_BATCH_SIZE,
        "sequences": summary.total,
        "embedded": summary.embedded,
        "failed": summary.failed,
        "register_s": round(register_s, 2),
        "embed_s": round(summary.embed_s, 2),
        "elapsed_s": round(summary.elapsed_s, 2),
        "throughput_seq_per_s": round(summary.throughput, 1),
        "end_to_end_seq_per_s": round(summary.embedded_this_run / summary.elapsed_s, 1),
        "stage_s": summary.stage_s,
        "index_spec": summary.index_spec,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "page_cache": "corpus evicted before the run" if cold else "as found",
    }


def cached(path: Path, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``fn()``'s result, stored at ``path``; a later bench run with the same work folder reuses it."""
    if path.is_file():
        return {**json.loads(path.read_text(encoding="utf-8")), "reused_from": str(path)}
    result = fn()
    atomic_write_bytes(path, (json.dumps(result, indent=1) + "\n").encode("utf-8"))
    return result


def run_reindex_bench(
    checkpoint: Path,
    workdir: str | Path,
    *,
    sequences: int = 100_000,
    compare_sequences: int = 10_000,
    seed: int = 0,
    ray_cluster: bool = True,
    thread_comparison: bool = False,
    precision: str = "float32",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Re-index ``sequences`` synthetic walks with the local backend (one single-threaded worker per
    core); on ``compare_sequences`` walks, the same against Ray actors on a local Ray cluster of one
    node per core (and, with ``thread_comparison``, one local worker with every core as a thread).
    Each finished run is kept in ``workdir`` and reused, so an interrupted bench continues. ``precision``:
    the encoder's arithmetic in every run (``StyleEncoder``)."""
    from encoder.inference import StyleEncoder
    from retrieval.jobs.backends import resolve_parallelism

    work = Path(workdir)
    encoder = StyleEncoder.load(checkpoint, precision=precision)
    cores = available_cores()
    workers, threads = resolve_parallelism(None, None, cores)
    key = f"{encoder.version}-seed{seed}" + ("" if precision == "float32" else f"-{precision}")
    local_label = f"local, {workers} workers x {threads} thread" + ("" if precision == "float32" else f", {precision}")
    plan: list[tuple[int, str, str, dict[str, Any]]] = []
    if ray_cluster or thread_comparison:
        plan.append((compare_sequences, "local", local_label, {"workers": workers, "threads": threads}))
    if thread_comparison and cores > 1:
        plan.append(
            (compare_sequences, "local", f"local, 1 worker x {cores} threads", {"workers": 1, "threads": cores})
        )
    if ray_cluster:
        plan.append(
            (
                compare_sequences,
                "ray",
                f"ray cluster, {cores} nodes x 1 CPU, 1 actor x 1 thread each",
                {"workers": cores, "threads": 1},
            )
        )
    plan.append((sequences, "local", local_label, {"workers": workers, "threads": threads}))
    runs: list[dict[str, Any]] = []
    corpus_s: dict[int, float] = {}
    for n, backend, label, options in plan:
        started = time.perf_counter()
        log(f"re-index bench: corpus of {n:,} walks in {work}")
        dataset = make_walk_corpus(
            work / f"walks-{n}-seed{seed}",
            n,
            seed=seed,
            input_dims=encoder.input_dims,
            progress=lambda i: log(f"  {i:,} walks written") if i % 20_000 == 0 else None,
        )
        corpus_s.setdefault(n, round(time.perf_counter() - started, 1))

        def one_run(
            backend: str = backend,
            label: str = label,
            options: dict[str, Any] = options,
            dataset: DatasetCache = dataset,
        ) -> dict[str, Any]:
            log(f"re-index run: {label} on {len(dataset):,} walks (load {load_average()})")
            root = work / "run-index"
            if backend != "ray":
                return {"run": label, **reindex_once(dataset, checkpoint, root, backend=backend, precision=precision,
                                                     **options)}
            with LocalRayCluster(work / "ray", nodes=cores, cpus_per_node=1) as cluster:
                result = reindex_once(dataset, checkpoint, root, backend="ray", ray_address=cluster.address,
                                      precision=precision, **options)
            return {
                "run": label,
                **result,
                "ray_address": "local cluster (ray start --head + worker nodes)",
                "cluster_start_s": round(cluster.start_s, 1),
                "cluster_cpus": cores,
            }

        runs.append(
            cached(work / "results" / f"{key}-{n}-{backend}-{options['workers']}x{options['threads']}.json", one_run)
        )
        log(f"  {runs[-1]['run']} on {n:,}: {runs[-1]['throughput_seq_per_s']} seq/s")
    return {
        "sequences": sequences,
        "compare_sequences": compare_sequences,
        "corpus_write_s": corpus_s,
        "encoder_version": encoder.version,
        "encoder_model": encoder.model_name,
        "encoder_parameters": encoder.num_parameters(),
        "precision": precision,
        "cores": cores,
        "runs": runs,
        "projection": project_archive(runs, cores),
    }


def _per_core(run: dict[str, Any]) -> float:
    cpus = (run.get("workers") or 1) * (run.get("threads") or 1)
    return run["throughput_seq_per_s"] / max(1, cpus)


def project_archive(
    runs: list[dict[str, Any]], cores: int, archive: int = 100_000_000, workers: tuple[int, ...] = (8, 32, 128, 512)
) -> dict[str, Any]:
    """Hours to embed ``archive`` walks on N single-core workers at the measured per-worker rate
    (embedding scales by workers: every worker reads its own sequences and writes its own shards)."""
    ray = next((r for r in runs if r["backend"] == "ray"), None)
    local = next(
        (
            r
            for r in runs
            if r["backend"] == "local"
            and ray is not None
            and r["sequences"] == ray["sequences"]
            and r["workers"] == ray["workers"]
        ),
        None,
    )
    main = max((r for r in runs if r["backend"] == "local"), key=lambda r: r["sequences"], default=None)
    out: dict[str, Any] = {"archive": archive}
    for name, run in (("local", main), ("ray", ray)):
        if run is None:
            continue
        rate = _per_core(run)
        out[name] = {
            "per_worker_seq_per_s": round(rate, 1),
            "hours": {str(n): round(archive / (rate * n) / 3600, 2) for n in workers},
            "workers_for_1_hour": int(np.ceil(archive / (rate * 3600))),
        }
    if local and ray:
        out["ray_over_local_per_core"] = round(_per_core(ray) / _per_core(local), 3)
    return out


def render_reindex_markdown(section: dict[str, Any]) -> list[str]:
    """Markdown lines of the re-index section."""
    lines = [
        f"`ReindexJob` over {section['sequences']:,} distinct synthetic walks (a pool of demo walks, each copy "
        "moved, scaled, time-shifted and jittered; one dataset cache, written once and reused), each run "
        f"into a fresh store. Encoder: {section['encoder_model']} ({section['encoder_parameters']:,} "
        f"parameters, version {section['encoder_version']}, {section.get('precision', 'float32')}), the checkpoint "
        f"the bench was given or the default model untrained. Machine: {section['cores']} cores. Throughput = "
        "sequences / embedding phase (read, preprocess, embed, write shards, record in the store); end to end "
        "adds planning and the index gather/build/verify/promote. "
        + ("Each run starts with the corpus's files evicted from the OS page cache (`posix_fadvise` DONTNEED), "
           "so it reads them from disk as a real re-index does."
           if all(r.get("page_cache") == "corpus evicted before the run" for r in section["runs"])
           else "Page cache: " + "; ".join(f"{r['run']}: {r.get('page_cache', 'as found')}" for r in section["runs"])
           + "."),
        "",
        "| run | walks | seq/s | seq/s per core | end to end seq/s | embed phase s | total s | load before "
        "| load after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in section["runs"]:
        lines.append(
            f"| {r['run']} | {r['sequences']:,} | **{r['throughput_seq_per_s']:,.1f}** | {_per_core(r):,.1f} | "
            f"{r['end_to_end_seq_per_s']:,.1f} | {r['embed_s']:,.1f} | {r['elapsed_s']:,.1f} | "
            f"{r['load_average_before']} | {r['load_average_after']} |"
        )
    lines += [
        "",
        "Seconds per stage (read, preprocess and embed are summed over the workers, so with W workers "
        "they add up to about W x the embedding phase; the rest runs in the job's process):",
        "",
    ]
    stages = list(dict.fromkeys(s for r in section["runs"] for s in ("plan", *STAGES, "gather") if s in r["stage_s"]))
    lines += ["| run | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
    for r in section["runs"]:
        lines.append(
            f"| {r['run']} ({r['sequences']:,}) | "
            + " | ".join(f"{r['stage_s'].get(s, 0.0):,.1f}" for s in stages)
            + " |"
        )

    lines += ["", "Share of the workers' time per sequence:", ""]
    for r in section["runs"]:
        total = sum(r["stage_s"].get(s, 0.0) for s in ("read", "preprocess", "embed")) or 1.0
        per_seq = 1000.0 * total / max(1, r["embedded"])
        parts = ", ".join(
            f"{s} {100 * r['stage_s'].get(s, 0.0) / total:.0f} %" for s in ("read", "preprocess", "embed")
        )
        lines.append(f"- {r['run']} ({r['sequences']:,} walks): {per_seq:.2f} worker-ms per sequence ({parts})")
    p = section["projection"]
    lines += ["", f"### Projection: {p['archive']:,} walks", ""]
    for name in ("local", "ray"):
        if name in p:
            hours = ", ".join(f"{n} workers {h:,.1f} h" for n, h in p[name]["hours"].items())
            lines.append(
                f"- {name}: {p[name]['per_worker_seq_per_s']:,.1f} seq/s per single-core worker -> {hours}; "
                f"{p[name]['workers_for_1_hour']:,} workers for one hour."
            )
    if "ray_over_local_per_core" in p:
        lines.append(
            f"- Ray cluster throughput per core / local per core: **{p['ray_over_local_per_core']:.2f}** "
            "(target >= 0.90)."
        )
    return lines
