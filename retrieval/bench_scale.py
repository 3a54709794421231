"""Retrieval at scale: serving at 1M (keypoint file -> hits with metadata, in its own process, with its
RSS) and the sharded IVF-PQ plan for 100M (``retrieval.index.sharded``) exercised at the largest size
this machine holds. Set-ups are kept in the work folder and reused, so an interrupted bench continues.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from encoder.data.atomic import atomic_write_bytes

SERVING_QUERIES = 50
SHARD_ROWS = 250_000
SCALE_QUERIES = 500
NPROBE_STEPS = (8, 16, 32, 64)
K_FACTORS = (4, 8)


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


# -- serving at 1M ---------------------------------------------------------------------------------------
def prepare_serving(root: Path, checkpoint: Path, n: int, *, seed: int = 0, log: Any = print) -> dict[str, Any]:
    """A store of ``n`` sequence rows and a live, verified index of ``n`` mixture vectors at ``root``
    (the product's automatic index choice); reused when already complete."""
    from encoder.inference import StyleEncoder
    from retrieval.bench import STORE_INSERT_CHUNK, ClusteredSphereMixture, _bench_record, _register_encoder
    from retrieval.index import IndexManager, new_version_name
    from retrieval.store import MetadataStore

    done = root / "setup.json"
    if done.is_file():
        return json.loads(done.read_text())
    encoder = StyleEncoder.load(checkpoint)
    root.mkdir(parents=True, exist_ok=True)
    (root / "metadata.db").unlink(missing_ok=True)
    with MetadataStore.open(root / "metadata.db") as store:
        log(f"serving: inserting {n:,} sequence rows")
        rng = np.random.default_rng(seed)
        ids: list[str] = []
        start = time.perf_counter()
        for chunk in range(0, n, STORE_INSERT_CHUNK):
            records = [_bench_record(i, rng) for i in range(chunk, min(n, chunk + STORE_INSERT_CHUNK))]
            store.upsert_sequences(records)
            ids.extend(r.id for r in records)
        insert_s = time.perf_counter() - start
        _register_encoder(store, encoder, checkpoint)
        log(f"serving: building the index of {n:,} vectors")
        vectors = ClusteredSphereMixture(dim=encoder.dim, seed=seed).sample(n, seed=n + 1)
        manager = IndexManager(root, store, use_gpu=False)
        version = new_version_name(encoder.version)
        start = time.perf_counter()
        record = manager.build(version, vectors, ids, encoder_version=encoder.version, seed=seed)
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        verdict = manager.verify(version, expected_ids=ids)
        if not verdict.ok:
            raise RuntimeError(verdict.summary())
        manager.promote(version)
        publish_s = time.perf_counter() - start
    setup = {"corpus": n, "index_spec": record.spec, "store_insert_s": round(insert_s, 1),
             "store_rows_per_s": round(n / insert_s), "index_build_s": round(build_s, 1),
             "verify_promote_s": round(publish_s, 1), "metadata_db_mib": _mib((root / "metadata.db").stat().st_size // 1024)}
    atomic_write_bytes(done, json.dumps(setup).encode())
    return setup


def serve_queries(root: Path, checkpoint: Path, paths: list[Path], k: int = 10) -> dict[str, Any]:
    """In this (fresh) process: open the live index, store and encoder, answer every query file twice
    (the second pass timed per stage) and report latency and RSS."""
    import faiss
    import torch

    from encoder.data.readers import read_pose_file
    from encoder.inference import StyleEncoder
    from retrieval.bench import latency_stats
    from retrieval.index import IndexManager
    from retrieval.search import SearchService
    from retrieval.store import MetadataStore

    rss_start = _status_kib("VmRSS")
    encoder = StyleEncoder.load(checkpoint)
    rss_encoder = _status_kib("VmRSS")
    store = MetadataStore.open(root / "metadata.db", migrate=False)
    service = SearchService(store, IndexManager(root, store, use_gpu=False), embedder=encoder)
    searcher = service.searcher()
    rss_open = _status_kib("VmRSS")
    for path in paths[:3]:
        service.search_by_file(path, k=k)
    totals, answered = [], []
    for path in paths:
        start = time.perf_counter()
        answered.append(service.search_by_file(path, k=k))
        totals.append(time.perf_counter() - start)
    stages: dict[str, list[float]] = {"read": [], "preprocess": [], "embed": [], "search_and_join": []}
    for path in paths:
        t0 = time.perf_counter()
        sequences = read_pose_file(path)
        t1 = time.perf_counter()
        items = [encoder.prepare(seq) for seq in sequences]
        t2 = time.perf_counter()
        vectors = encoder.embed_prepared(items)
        t3 = time.perf_counter()
        service.search_by_vector(vectors[0], k=k)
        t4 = time.perf_counter()
        for key, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[key].append(seconds)
    rss_end = _status_kib("VmRSS")
    complete = all(len(r) == 1 and len(r[0]) == k and all(h.metadata.get("label") for h in r[0]) for r in answered)
    store.close()
    return {"latency": latency_stats(totals), "stages": {key: latency_stats(v) for key, v in stages.items()},
            "all_queries_got_k_hits_with_metadata": complete, "queries": len(paths),
            "index_version": searcher.version, "index_params": searcher.params.to_json(),
            "torch_threads": torch.get_num_threads(), "faiss_threads": faiss.omp_get_max_threads(),
            "rss_mib": {"process_start": _mib(rss_start), "after_encoder": _mib(rss_encoder),
                        "after_index_and_store_open": _mib(rss_open), "after_queries": _mib(rss_end),
                        "peak": _mib(_status_kib("VmHWM")),
                        "index_and_metadata": _mib(rss_end - rss_encoder)}}


def bench_serving(checkpoint: Path, workdir: Path, n: int = 1_000_000, *, queries: int = SERVING_QUERIES,
                  seed: int = 0, log: Any = print) -> dict[str, Any]:
    """Set up (or reuse) the ``n``-row store and index, then time ``queries`` keypoint files end to end
    in a separate serving process."""
    from encoder.inference import StyleEncoder
    from retrieval.bench import write_query_files
    from retrieval.bench_reindex import load_average as load_average_now

    root = workdir / f"serving-{n}"
    setup = prepare_serving(root, checkpoint, n, seed=seed, log=log)
    paths = write_query_files(workdir / "serving-queries", queries, StyleEncoder.load(checkpoint).input_dims, seed + 7)
    log(f"serving: {queries} queries in a fresh process")
    load_before = load_average_now()
    code = ("import json, sys; from pathlib import Path; from retrieval.bench_scale import serve_queries; "
            "a = json.loads(sys.argv[1]); print(json.dumps(serve_queries(Path(a['root']), Path(a['checkpoint']), "
            "[Path(p) for p in a['paths']])))")
    args = json.dumps({"root": str(root), "checkpoint": str(checkpoint), "paths": [str(p) for p in paths]})
    done = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"serving process failed: {done.stderr.strip()[-600:]}")
    served = json.loads(done.stdout.strip().splitlines()[-1])
    return {**setup, **served, "load_average_before": load_before, "load_average_after": load_average_now()}


# -- the sharded IVF-PQ plan -----------------------------------------------------------------------------
def bench_sharded_ivf_pq(workdir: Path, n: int, *, shard_rows: int = SHARD_ROWS, queries: int = SCALE_QUERIES,
                         seed: int = 0, log: Any = print) -> dict[str, Any]:
    """Train on a sample, encode ``n / shard_rows`` shards apart, merge, search with exact re-ranking
    from the memory-mapped shard files; recall@10 against brute force over held-out queries."""
    import faiss

    from retrieval.bench import ClusteredSphereMixture, exact_top_k, latency_stats, recall_at_k
    from retrieval.index.sharded import (encode_shard, ivf_pq_codes_spec, merge_shards, search_reranked,
                                         train_ivf_pq, training_sample)

    dim = 128
    mixture = ClusteredSphereMixture(dim=dim, seed=seed)
    folder = workdir / f"sharded-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    bounds = list(range(0, n, shard_rows)) + [n]
    paths = [folder / f"shard-{i:05d}.npy" for i in range(len(bounds) - 1)]
    log(f"sharded IVF-PQ: writing {len(paths)} embedding shards of {n:,} vectors")
    for i, path in enumerate(paths):
        if not path.is_file():
            np.save(path, mixture.sample(bounds[i + 1] - bounds[i], seed=seed * 1000 + i))
    shards = [np.load(p, mmap_mode="r") for p in paths]
    query_vectors = mixture.sample(queries, seed=10_000 + seed)
    spec = ivf_pq_codes_spec(n, dim)
    rss_before = _status_kib("VmRSS")
    log(f"sharded IVF-PQ: training {spec}")
    start = time.perf_counter()
    nlist = int(spec.split(",")[0][3:])
    rows = training_sample(n, nlist, seed)
    sample = np.concatenate([shards[i][rows[(rows >= lo) & (rows < hi)] - lo]
                             for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))])
    trained = train_ivf_pq(spec, sample, seed=seed)
    train_s = time.perf_counter() - start
    log("sharded IVF-PQ: encoding shards")
    encoded, encode_s = [], []
    for i, shard in enumerate(shards):
        start = time.perf_counter()
        encoded.append(encode_shard(trained, np.asarray(shard), bounds[i]))
        encode_s.append(time.perf_counter() - start)
    start = time.perf_counter()
    merged = merge_shards(trained, encoded)
    merge_s = time.perf_counter() - start
    index_bytes = faiss.serialize_index(merged).nbytes
    rss_index = _status_kib("VmRSS") - rss_before
    log("sharded IVF-PQ: exact neighbours of the queries")
    stacked = np.concatenate([np.asarray(s) for s in shards])
    truth = exact_top_k(query_vectors, stacked)
    del stacked

    def vectors_of(ids: np.ndarray) -> np.ndarray:
        shard_of = np.searchsorted(bounds, ids, side="right") - 1
        return np.stack([shards[s][i - bounds[s]] for s, i in zip(shard_of, ids)])

    sweep = []
    for nprobe in NPROBE_STEPS:
        for k_factor in K_FACTORS:
            found, times = [], []
            for q in query_vectors:
                t = time.perf_counter()
                _, ids = search_reranked(merged, q[None, :], 10, nprobe=nprobe, k_factor=k_factor, vectors_of=vectors_of)
                times.append(time.perf_counter() - t)
                found.append(ids[0])
            sweep.append({"nprobe": nprobe, "k_factor": k_factor, "recall_at_10": round(recall_at_k(np.stack(found), truth), 4),
                          **{f"{key}_ms": value for key, value in _ms(latency_stats(times)).items()}})
    return {"vectors": n, "dim": dim, "spec": spec, "shards": len(paths), "shard_rows": shard_rows,
            "train_vectors": int(rows.size), "train_s": round(train_s, 1),
            "encode_s_per_shard": round(float(np.mean(encode_s)), 2), "encode_s_total": round(float(sum(encode_s)), 1),
            "encode_vectors_per_s_per_core": round(n / sum(encode_s)), "merge_s": round(merge_s, 2),
            "index_bytes": index_bytes, "index_bytes_per_vector": round(index_bytes / n, 1),
            "rss_growth_mib": _mib(rss_index), "queries": queries, "sweep": sweep,
            "faiss_threads_build": faiss.omp_get_max_threads()}


def _ms(stats: dict[str, float]) -> dict[str, float]:
    return {key.removesuffix("_ms"): value for key, value in stats.items() if key in ("p50_ms", "p99_ms")}
