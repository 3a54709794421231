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

from benchmarks.machine import peak_rss_bytes, rss_bytes
from encoder.data.atomic import atomic_write_bytes

SERVING_QUERIES = 50
SHARD_ROWS = 250_000
SCALE_QUERIES = 500
NPROBE_STEPS = (8, 16, 32, 64)
K_FACTORS = (4, 8)


def _mib(n_bytes: int) -> float:
    return round(n_bytes / 2 ** 20, 1)


# -- serving at 1M ---------------------------------------------------------------------------------------
def prepare_serving(root: Path, checkpoint: Path, n: int, *, seed: int = 0, log: Any = print) -> dict[str, Any]:
    """A store of ``n`` sequence rows and a live, verified index of ``n`` mixture vectors at ``root``
    (the product's automatic index choice); reused when already complete."""
    from benchmarks.retrieval_bench import ClusteredSphereMixture, _register_encoder, insert_bench_records
    from encoder.inference import StyleEncoder
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
        start = time.perf_counter()
        ids = insert_bench_records(store, n, seed)
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
    setup = {
        "corpus": n,
        "index_spec": record.spec,
        "store_insert_s": round(insert_s, 1),
        "store_rows_per_s": round(n / insert_s),
        "index_build_s": round(build_s, 1),
        "verify_promote_s": round(publish_s, 1),
        "metadata_db_mib": _mib((root / "metadata.db").stat().st_size),
    }
    atomic_write_bytes(done, json.dumps(setup).encode())
    return setup


def serve_queries(root: Path, checkpoint: Path, paths: list[Path], k: int = 10) -> dict[str, Any]:
    """In this (fresh) process: open the live index, store and encoder, answer every query file twice
    (the second pass timed per stage) and report latency and RSS."""
    import faiss
    import torch

    from benchmarks.retrieval_bench import time_search_by_file
    from encoder.inference import StyleEncoder
    from retrieval.index import IndexManager
    from retrieval.search import SearchService, freeze_loaded_objects
    from retrieval.store import MetadataStore

    rss_start = rss_bytes()
    encoder = StyleEncoder.load(checkpoint)
    rss_encoder = rss_bytes()
    store = MetadataStore.open(root / "metadata.db", migrate=False)
    service = SearchService(store, IndexManager(root, store, use_gpu=False), embedder=encoder)
    searcher = service.searcher()
    freeze_loaded_objects()   # as the app does once its live index is open
    rss_open = rss_bytes()
    timings = time_search_by_file(service, encoder, paths, k)
    rss_end = rss_bytes()
    store.close()
    return {
        **timings,
        "queries": len(paths),
        "index_version": searcher.version,
        "index_params": searcher.params.to_json(),
        "torch_threads": torch.get_num_threads(),
        "faiss_threads": faiss.omp_get_max_threads(),
        "rss_mib": {
            "process_start": _mib(rss_start),
            "after_encoder": _mib(rss_encoder),
            "after_index_and_store_open": _mib(rss_open),
            "after_queries": _mib(rss_end),
            "peak": _mib(peak_rss_bytes()),
            "index_and_metadata": _mib(rss_end - rss_encoder),
        },
    }


def bench_serving(
    checkpoint: Path,
    workdir: Path,
    n: int = 1_000_000,
    *,
    queries: int = SERVING_QUERIES,
    seed: int = 0,
    log: Any = print,
) -> dict[str, Any]:
    """Set up (or reuse) the ``n``-row store and index, then time ``queries`` keypoint files end to end
    in a separate serving process."""
    from benchmarks.reindex_bench import load_average as load_average_now
    from benchmarks.retrieval_bench import write_query_files
    from encoder.inference import StyleEncoder

    root = workdir / f"serving-{n}"
    setup = prepare_serving(root, checkpoint, n, seed=seed, log=log)
    paths = write_query_files(workdir / "serving-queries", queries, StyleEncoder.load(checkpoint).input_dims, seed + 7)
    log(f"serving: {queries} queries in a fresh process")
    load_before = load_average_now()
    code = (
        "import json, sys; from pathlib import Path; from benchmarks.scale_bench import serve_queries; "
        "a = json.loads(sys.argv[1]); print(json.dumps(serve_queries(Path(a['root']), Path(a['checkpoint']), "
        "[Path(p) for p in a['paths']])))"
    )
    args = json.dumps({"root": str(root), "checkpoint": str(checkpoint), "paths": [str(p) for p in paths]})
    done = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"serving process failed: {done.stderr.strip()[-600:]}")
    served = json.loads(done.stdout.strip().splitlines()[-1])
    return {**setup, **served, "load_average_before": load_before, "load_average_after": load_average_now()}


# -- the sharded IVF-PQ plan -----------------------------------------------------------------------------
def bench_sharded_ivf_pq(
    workdir: Path,
    n: int,
    *,
    dim: int = 128,
    shard_rows: int = SHARD_ROWS,
    queries: int = SCALE_QUERIES,
    seed: int = 0,
    log: Any = print,
) -> dict[str, Any]:
    """Train on a sample, encode ``n / shard_rows`` shards apart, merge, search with exact re-ranking
    from the memory-mapped shard files; recall@10 against brute force over held-out queries. ``dim``:
    the vectors' width (the bench passes its encoder's)."""
    import faiss

    from benchmarks.retrieval_bench import ClusteredSphereMixture, latency_stats
    from retrieval.index.sharded import (
        encode_shard,
        ivf_pq_codes_spec,
        merge_shards,
        search_reranked,
        train_ivf_pq,
        training_sample,
    )
    from retrieval.index.spec import exact_search, recall_at_k

    mixture = ClusteredSphereMixture(dim=dim, seed=seed)
    folder = workdir / f"sharded-{n}-{dim}d"
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
    rss_before = rss_bytes()
    log(f"sharded IVF-PQ: training {spec}")
    start = time.perf_counter()
    nlist = int(spec.split(",")[0][3:])
    rows = training_sample(n, nlist, seed)
    sample = np.concatenate(
        [shards[i][rows[(rows >= lo) & (rows < hi)] - lo] for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))]
    )
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
    rss_index = rss_bytes() - rss_before
    log("sharded IVF-PQ: exact neighbours of the queries")
    stacked = np.concatenate([np.asarray(s) for s in shards])
    truth = exact_search(query_vectors, stacked, np.arange(len(stacked)), 10)[1]
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
                _, ids = search_reranked(
                    merged, q[None, :], 10, nprobe=nprobe, k_factor=k_factor, vectors_of=vectors_of
                )
                times.append(time.perf_counter() - t)
                found.append(ids[0])
            sweep.append(
                {
                    "nprobe": nprobe,
                    "k_factor": k_factor,
                    "recall_at_10": round(recall_at_k(np.stack(found), truth), 4),
                    **{f"{key}_ms": value for key, value in _ms(latency_stats(times)).items()},
                }
            )
    return {
        "vectors": n,
        "dim": dim,
        "spec": spec,
        "shards": len(paths),
        "shard_rows": shard_rows,
        "train_vectors": int(rows.size),
        "train_s": round(train_s, 1),
        "encode_s_per_shard": round(float(np.mean(encode_s)), 2),
        "encode_s_total": round(float(sum(encode_s)), 1),
        "encode_vectors_per_s_per_core": round(n / sum(encode_s)),
        "merge_s": round(merge_s, 2),
        "index_bytes": index_bytes,
        "index_bytes_per_vector": round(index_bytes / n, 1),
        "rss_growth_mib": _mib(rss_index),
        "queries": queries,
        "sweep": sweep,
        "faiss_threads_build": faiss.omp_get_max_threads(),
    }


def _ms(stats: dict[str, float]) -> dict[str, float]:
    return {key.removesuffix("_ms"): value for key, value in stats.items() if key in ("p50_ms", "p99_ms")}


# -- targets and report ----------------------------------------------------------------------------------
TARGET_REINDEX_SEQ_PER_S = 800.0
TARGET_REINDEX_WALKS = 100_000
TARGET_RAY_PER_CORE_SHARE = 0.90
TARGET_SERVING_SIZE = 1_000_000
TARGET_SERVING_P50_MS = 20.0
TARGET_SERVING_P99_MS = 50.0
TARGET_SERVING_RSS_MIB = 1.5 * 1024


def _reindex_target(section: dict[str, Any], name: str) -> dict[str, Any]:
    """The re-index target line of one encoder's section: its local run over the most walks."""
    main = max((r for r in section["runs"] if r["backend"] == "local"), key=lambda r: r["sequences"])
    rate = main["throughput_seq_per_s"]
    stages = main["stage_s"]
    worker_s = sum(stages.get(s, 0.0) for s in ("read", "preprocess", "embed")) or 1.0
    return {
        "name": f"{name}: >= {TARGET_REINDEX_SEQ_PER_S:.0f} seq/s",
        "measured": f"{rate:,.1f} seq/s on {main['sequences']:,} walks ({main['run']})",
        "met": rate >= TARGET_REINDEX_SEQ_PER_S and main["sequences"] >= TARGET_REINDEX_WALKS,
        "detail": "met"
        if rate >= TARGET_REINDEX_SEQ_PER_S
        else (
            f"{TARGET_REINDEX_SEQ_PER_S / max(rate, 1e-9):.1f}x short; workers' time: embed "
            f"{100 * stages.get('embed', 0) / worker_s:.0f} %, "
            f"preprocess {100 * stages.get('preprocess', 0) / worker_s:.0f} %, "
            f"read {100 * stages.get('read', 0) / worker_s:.0f} %; "
            f"load average {main['load_average_before']} at the start"
        ),
    }


def scale_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 10's re-index, Ray and serving targets against the parts of ``report`` that hold them."""
    out: list[dict[str, Any]] = []
    section = report.get("reindex")
    if isinstance(section, dict) and section.get("runs"):
        out.append(_reindex_target(section, f"re-index, local backend, >= {TARGET_REINDEX_WALKS:,} walks"))
        for other in section.get("other_runs", []):
            out.append(_reindex_target(other, f"re-index with {other['encoder_model']} "
                                              f"({other['encoder_parameters']:,} parameters, version "
                                              f"{other['encoder_version']}, {other.get('precision', 'float32')}), "
                                              "local backend"))
        share = section["projection"].get("ray_over_local_per_core")
        if share is not None:
            out.append(
                {
                    "name": f"Ray on a local Ray cluster: >= {TARGET_RAY_PER_CORE_SHARE:.0%} of the local "
                            "backend's throughput per core",
                    "measured": f"{share:.2f} of local per core (on {section['compare_sequences']:,} walks)",
                    "met": share >= TARGET_RAY_PER_CORE_SHARE,
                    "detail": "met"
                    if share >= TARGET_RAY_PER_CORE_SHARE
                    else f"short by {TARGET_RAY_PER_CORE_SHARE - share:.2f}",
                }
            )
    serving = report.get("serving")
    if isinstance(serving, dict) and "latency" in serving:
        p50, p99 = serving["latency"]["p50_ms"], serving["latency"]["p99_ms"]
        rss = serving["rss_mib"]["after_queries"]
        misses = [f"p50 over by {p50 - TARGET_SERVING_P50_MS:.1f} ms" for _ in [0] if p50 > TARGET_SERVING_P50_MS]
        misses += [f"p99 over by {p99 - TARGET_SERVING_P99_MS:.1f} ms" for _ in [0] if p99 > TARGET_SERVING_P99_MS]
        out.append(
            {
                "name": f"serving at {TARGET_SERVING_SIZE:,}: keypoint file -> hits with metadata, p50 <= "
                f"{TARGET_SERVING_P50_MS:.0f} ms, p99 <= {TARGET_SERVING_P99_MS:.0f} ms",
                "measured": f"p50 {p50:.1f} ms, p99 {p99:.1f} ms at {serving['corpus']:,} vectors and rows",
                "met": not misses and serving["corpus"] >= TARGET_SERVING_SIZE,
                "detail": "; ".join(misses) or "met",
            }
        )
        out.append(
            {
                "name": "serving process RSS (index + metadata store + encoder) "
                        f"<= {TARGET_SERVING_RSS_MIB / 1024:.1f} GiB",
                "measured": f"{rss:,.0f} MiB after the queries (index and store: "
                            f"+{serving['rss_mib']['index_and_metadata']:,.0f} MiB)",
                "met": rss <= TARGET_SERVING_RSS_MIB and serving["corpus"] >= TARGET_SERVING_SIZE,
                "detail": "met"
                if rss <= TARGET_SERVING_RSS_MIB
                else f"over by {rss - TARGET_SERVING_RSS_MIB:,.0f} MiB",
            }
        )
    return out


def render_scale_markdown(report: dict[str, Any]) -> list[str]:
    """Markdown lines of the re-index, serving and sharded-index sections."""
    from benchmarks.reindex_bench import render_reindex_markdown

    lines: list[str] = []
    section = report.get("reindex")
    if isinstance(section, dict) and section.get("runs"):
        lines += ["## Re-index throughput", "", *render_reindex_markdown(section), ""]
        for other in section.get("other_runs", []):
            lines += [f"### The same walks with {other['encoder_model']} (version {other['encoder_version']}, "
                      f"{other.get('precision', 'float32')})", "",
                      *render_reindex_markdown(other), ""]
    serving = report.get("serving")
    if isinstance(serving, dict) and "latency" in serving:
        rss = serving["rss_mib"]
        lines += [
            f"## Serving at {serving['corpus']:,}",
            "",
            f"A fresh serving process opens the live index (`{serving['index_spec']}`, "
            f"{_params_text(serving['index_params'])}, built, verified and promoted by `IndexManager`), a SQLite "
            f"`MetadataStore` of {serving['corpus']:,} sequence rows ({serving['metadata_db_mib']:,} MiB file) and the "
            f"encoder, then answers {serving['queries']} COCO keypoint JSON files with `SearchService.search_by_file` "
            f"(top 10 with metadata); stages timed in a second pass. Torch threads {serving['torch_threads']}, FAISS "
            f"threads {serving['faiss_threads']}. Load average {serving['load_average_before']} before, "
            f"{serving['load_average_after']} after.",
            "",
            "| stage | p50 ms | p99 ms | mean ms |",
            "|---|---|---|---|",
            f"| **total (search_by_file)** | **{serving['latency']['p50_ms']:.2f}** "
            f"| **{serving['latency']['p99_ms']:.2f}** "
            f"| **{serving['latency']['mean_ms']:.2f}** |",
            *[
                f"| {name.replace('_', ' ')} | {st['p50_ms']:.2f} | {st['p99_ms']:.2f} | {st['mean_ms']:.2f} |"
                for name, st in serving["stages"].items()
            ],
            "",
            "RSS of the serving process (MiB): at start (Python, torch, FAISS imported) "
            f"{rss['process_start']:,}, with "
            f"the encoder {rss['after_encoder']:,}, with index and store open {rss['after_index_and_store_open']:,}, "
            f"after the queries {rss['after_queries']:,} (peak {rss['peak']:,}); index + metadata: "
            f"**+{rss['index_and_metadata']:,} MiB**. Every query returned 10 hits with metadata: "
            f"{'yes' if serving['all_queries_got_k_hits_with_metadata'] else '**no**'}. Set-up: {serving['corpus']:,} "
            f"rows inserted in {serving['store_insert_s']} s, index build (with tuning) {serving['index_build_s']} s, "
            f"verify + promote {serving['verify_promote_s']} s.",
            "",
        ]
    sharded = report.get("sharded")
    if isinstance(sharded, dict) and "sweep" in sharded:
        lines += [
            f"## Past one machine: sharded IVF-PQ at {sharded['vectors']:,}",
            "",
            f"The plan of `retrieval.index.sharded` exercised on {sharded['vectors']:,} mixture vectors in "
            f"{sharded['shards']} embedding shards of {sharded['shard_rows']:,}: `{sharded['spec']}` trained once on "
            f"{sharded['train_vectors']:,} sampled vectors ({sharded['train_s']} s), each shard encoded into its own "
            f"copy of the trained index ({sharded['encode_s_per_shard']} s per shard, "
            f"{sharded['encode_vectors_per_s_per_core']:,} vectors/s), the inverted lists merged "
            f"({sharded['merge_s']} s); {sharded['index_bytes_per_vector']} bytes per vector "
            f"({sharded['index_bytes'] / 2**20:,.0f} MiB; RSS +{sharded['rss_growth_mib']:,} MiB). "
            "Search: PQ candidates "
            f"(k x k_factor), re-scored exactly from the memory-mapped shard files, one query at a time on one thread; "
            f"recall@10 over {sharded['queries']} held-out queries against brute force.",
            "",
            "| nprobe | k_factor | recall@10 | p50 ms | p99 ms |",
            "|---|---|---|---|---|",
            *[
                f"| {p['nprobe']} | {p['k_factor']} | {p['recall_at_10']:.3f} | {p['p50_ms']:.3f} | {p['p99_ms']:.3f} |"
                for p in sharded["sweep"]
            ],
            "",
            *_hundred_million(sharded, report.get("reindex")),
            "",
        ]
    return lines


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "exact"


def _hundred_million(sharded: dict[str, Any], reindex: Any, archive: int = 100_000_000) -> list[str]:
    """The 100M plan in figures, scaled from the measured per-vector costs."""
    codes_gib = sharded["index_bytes_per_vector"] * archive / 2**30
    vectors_gib = archive * sharded["dim"] * 4 / 2**30
    encode_h = archive / sharded["encode_vectors_per_s_per_core"] / 3600
    lines = [
        f"At {archive:,} walks: IVF-PQ codes and ids take about {codes_gib:,.1f} GiB (measured "
        f"{sharded['index_bytes_per_vector']} bytes per vector; with nlist raised to ~65,536 the coarse quantiser "
        f"adds {65536 * sharded['dim'] * 4 / 2**20:,.0f} MiB), against {vectors_gib:,.0f} GiB for the float32 "
        "vectors that an `RFlat` refine step would hold, so the vectors stay in the embedding shards on disk "
        "(memory-mapped, a few rows read per query for the re-rank). Encoding all codes is "
        f"{encode_h:,.1f} core-hours at the measured rate, done per shard by the embedding workers; training on "
        "a sample is done once; the merge is a sequential append of lists (FAISS's on-disk inverted lists "
        "merge the same way when the codes outgrow a serving machine's RAM, or the shards are served as "
        "separate indexes whose top-k lists are merged by score)."
    ]
    if isinstance(reindex, dict) and "local" in reindex.get("projection", {}):
        p = reindex["projection"]["local"]
        lines.append(
            f"Embedding {archive:,} walks at the measured {p['per_worker_seq_per_s']:,.1f} seq/s per "
            f"single-core worker takes {p['workers_for_1_hour']:,} workers for one hour "
            f"(or {', '.join(f'{h:,.1f} h on {n}' for n, h in p['hours'].items())} workers)."
        )
    return lines
