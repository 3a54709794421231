"""``posestyle search``: which walks look like this one? By indexed id, pose file or raw vector."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from app.cli import cli
from encoder.data.errors import PoseDataError
from encoder.data.video import VideoOptions
from retrieval.analysis import AppService, NoIndexError
from retrieval.search import QueryError, SearchHit
from retrieval.store import StoreError

EXIT_NO_INDEX, EXIT_USAGE = 1, 2


def _fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True).print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _hits_table(title: str, hits: list[SearchHit]) -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in (("rank", "right"), ("sequence", "left"), ("score", "right"), ("label", "left"),
                          ("collection", "left"), ("season", "left"), ("tags", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for hit in hits:
        meta = hit.metadata
        table.add_row(str(hit.rank), hit.sequence_id, f"{hit.score:.4f}", str(meta.get("label") or ""),
                      str(meta.get("collection") or ""), str(meta.get("season") or ""),
                      ", ".join(meta.get("tags") or ()))
    return table


def _hit_json(hit: SearchHit) -> dict:
    return {"rank": hit.rank, "sequence_id": hit.sequence_id, "score": round(float(hit.score), 6),
            "metadata": hit.metadata}


@cli.command("search")
def search_command(
    sequence_id: str = typer.Option(None, "--id", help="Query by an indexed sequence id."),
    file: Path = typer.Option(None, "--file", "-f", help="Query by a pose file (BVH, keypoint JSON, NPY/NPZ) or a video (video extra)."),
    vector: Path = typer.Option(None, "--vector", help="Query by embedding vectors: a .npy of shape (D,) or (N, D)."),
    k: int = typer.Option(10, "-k", "--top", min=1, help="Number of hits per query."),
    label: list[str] = typer.Option(None, "--label", help="Only these labels (repeatable)."),
    collection: list[str] = typer.Option(None, "--collection", help="Only these collections (repeatable)."),
    season: list[str] = typer.Option(None, "--season", help="Only these seasons (repeatable)."),
    tag: list[str] = typer.Option(None, "--tag", help="Only sequences with any of these tags (repeatable)."),
    root: Path = typer.Option(Path("index_data"), "--root", help="Data folder holding the live index."),
    store: str = typer.Option(None, "--store", help="Metadata store URL (default: sqlite:///<root>/metadata.db)."),
    as_json: bool = typer.Option(False, "--json", help="Print hits as JSON (one list per query)."),
    stride: int = typer.Option(1, "--stride", min=1, help="Video query: estimate pose on every n-th frame, interpolate the rest."),
) -> None:
    """Top-k sequences closest in style to the query, with their metadata, from the live index."""
    if sum(x is not None for x in (sequence_id, file, vector)) != 1:
        raise _fail("give exactly one query: --id, --file or --vector", EXIT_USAGE)
    filters = AppService.make_filters(label or (), collection or (), season or (), tag or ())
    try:
        with AppService(root, store) as service:
            live = service.open_live()
            if sequence_id is not None:
                titles, results = [f"closest to {sequence_id}"], [live.search.search_by_id(sequence_id, k, filters)]
            elif file is not None:
                if live.encoder is None:
                    raise _fail(f"cannot embed {file}: {live.encoder_problem}", EXIT_NO_INDEX)
                results = live.search.search_by_file(file, k, filters, video=VideoOptions(stride=stride))
                titles = [f"closest to {file} (sequence {i + 1})" for i in range(len(results))]
            else:
                queries = np.atleast_2d(np.load(vector, allow_pickle=False))
                results = live.search.search_by_vectors(queries, k, filters)
                titles = [f"closest to {vector} row {i}" for i in range(len(results))]
    except (QueryError, PoseDataError, ValueError, OSError) as err:
        raise _fail(" ".join(str(err).split()), EXIT_USAGE) from None
    except (NoIndexError, StoreError) as err:
        raise _fail(" ".join(str(err).split()), EXIT_NO_INDEX) from None
    if as_json:
        typer.echo(json.dumps([[_hit_json(h) for h in hits] for hits in results], default=str))
        return
    console = Console()
    for title, hits in zip(titles, results):
        console.print(_hits_table(f"{title} (index {live.version})", hits))
