"""``posestyle search``: which walks look like this one? By indexed id, pose file or raw vector."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from app.cli import cli
from app.cli.common import EXIT_CODES_HELP, EXIT_FAILED, EXIT_USAGE, fail

if TYPE_CHECKING:
    from rich.table import Table

    from retrieval.search import SearchHit

HIT_COLUMNS = (("rank", "right"), ("sequence", "left"), ("score", "right"), ("label", "left"),
               ("collection", "left"), ("season", "left"), ("tags", "left"))
UNCUT_COLUMNS = ("sequence", "label")   # never shortened or wrapped: other columns give way


def hits_table(title: str, hits: list[SearchHit]) -> Table:
    """One row per hit; ids and labels keep their full width, the other columns wrap."""
    from rich.table import Table

    rows = [(str(hit.rank), hit.sequence_id, f"{hit.score:.4f}", str(hit.metadata.get("label") or ""),
             str(hit.metadata.get("collection") or ""), str(hit.metadata.get("season") or ""),
             ", ".join(hit.metadata.get("tags") or ())) for hit in hits]
    table = Table(title=title, title_justify="left", padding=(0, 1), collapse_padding=True)
    for i, (name, justify) in enumerate(HIT_COLUMNS):
        widest = max([len(name), *(len(row[i]) for row in rows)])
        uncut = name in UNCUT_COLUMNS or name in ("rank", "score")
        table.add_column(name, justify=justify, no_wrap=uncut,  # type: ignore[arg-type]
                         min_width=widest if uncut else None, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _hit_json(hit: SearchHit) -> dict:
    return {"rank": hit.rank, "sequence_id": hit.sequence_id, "score": round(float(hit.score), 6),
            "metadata": hit.metadata}


def _filters_text(label: list[str], collection: list[str], season: list[str], tag: list[str]) -> str:
    parts = [f"{name} {', '.join(values)}" for name, values in
             (("label", label), ("collection", collection), ("season", season), ("tag", tag)) if values]
    return "; ".join(parts)


@cli.command("search", epilog=EXIT_CODES_HELP + " A search that matches nothing says so on stderr and exits 0 "
                                                "(with --json it prints empty lists).")
def search_command(
    sequence_id: str = typer.Option(None, "--id", metavar="ID", help="Query by an indexed sequence id."),
    file: Path = typer.Option(None, "--file", "-f", metavar="FILE",
                              help="Query by a pose file (BVH, keypoint JSON, NPY/NPZ) or a video (video extra)."),
    vector: Path = typer.Option(None, "--vector", metavar="NPY",
                                help="Query by embedding vectors: a .npy of shape (D,) or (N, D)."),
    k: int = typer.Option(10, "-k", "--top", min=1, metavar="K", help="Number of hits per query."),
    label: list[str] = typer.Option(None, "--label", metavar="LABEL", help="Only these labels (repeatable)."),
    collection: list[str] = typer.Option(None, "--collection", metavar="NAME",
                                         help="Only these collections (repeatable)."),
    season: list[str] = typer.Option(None, "--season", metavar="SEASON", help="Only these seasons (repeatable)."),
    tag: list[str] = typer.Option(None, "--tag", metavar="TAG",
                                  help="Only sequences with any of these tags (repeatable)."),
    root: Path = typer.Option(Path("index_data"), "--root", metavar="DIR", help="Data folder holding the live index."),
    store: str = typer.Option(None, "--store", metavar="URL",
                              help="Metadata store URL (default: sqlite:///<root>/metadata.db)."),
    as_json: bool = typer.Option(False, "--json", help="Print hits as JSON (one list per query)."),
    stride: int = typer.Option(1, "--stride", min=1, metavar="N",
                               help="Video query: estimate pose on every n-th frame, interpolate the rest."),
) -> None:
    """Top-k sequences closest in style to the query, with their metadata, from the live index."""
    if sum(x is not None for x in (sequence_id, file, vector)) != 1:
        raise fail("give exactly one query: --id, --file or --vector", EXIT_USAGE)
    import numpy as np

    from app.services.analysis import AppService, NoIndexError
    from encoder.data.errors import PoseDataError
    from encoder.data.video import VideoOptions
    from retrieval.search import QueryError
    from retrieval.store import StoreError

    label, collection, season, tag = label or [], collection or [], season or [], tag or []
    filters = AppService.make_filters(label, collection, season, tag)
    try:
        with AppService(root, store) as service:
            live = service.open_live()
            if sequence_id is not None:
                titles, results = [f"closest to {sequence_id}"], [live.search.search_by_id(sequence_id, k, filters)]
            elif file is not None:
                if live.encoder is None:
                    raise fail(f"cannot embed {file}: {live.encoder_problem}", EXIT_FAILED)
                results = live.search.search_by_file(file, k, filters, video=VideoOptions(stride=stride))
                titles = [f"closest to {file} (sequence {i + 1})" for i in range(len(results))]
            else:
                queries = np.atleast_2d(np.load(vector, allow_pickle=False))
                results = live.search.search_by_vectors(queries, k, filters)
                titles = [f"closest to {vector} row {i}" for i in range(len(results))]
    except (QueryError, PoseDataError, ValueError, OSError) as err:
        raise fail(str(err), EXIT_USAGE) from None
    except (NoIndexError, StoreError) as err:
        raise fail(str(err), EXIT_FAILED) from None
    filters_text = _filters_text(label, collection, season, tag)
    for title, hits in zip(titles, results):
        if not hits:
            typer.echo(f"{title}: no hits" + (f" (no indexed sequence matches {filters_text})" if filters_text
                                              else " (the index is empty)"), err=True)
    if as_json:
        typer.echo(json.dumps([[_hit_json(h) for h in hits] for hits in results], default=str))
        return
    from rich.console import Console

    console = Console()
    for title, hits in zip(titles, results):
        if hits:
            console.print(hits_table(f"{title} (index {live.version})", hits))
