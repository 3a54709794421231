"""``posestyle app``: serve the Streamlit app over a data root.

Runs ``streamlit run app/ui/main.py --server.headless true --server.port PORT -- --root ROOT
[--store URL] [--read-only]`` in place of this process (so Ctrl-C and ``kill`` reach the server directly), with
usage statistics off (nothing is sent anywhere) and the upload limit of the Search page. The app
is read-only (no re-index form, no server paths) with ``--read-only`` and, unless ``--writable`` is
given, whenever it listens on a non-loopback address.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from app.cli import cli
from app.cli.common import EXIT_CODES_HELP, EXIT_USAGE, fail
from app.services.server_paths import default_read_only

APP_MAIN = Path(__file__).resolve().parents[1] / "ui" / "main.py"


def streamlit_command(root: Path, port: int, address: str, store: str | None, read_only: bool = False) -> list[str]:
    """The argv that serves the app (headless, no usage statistics, bounded uploads)."""
    from app.services.limits import MAX_UPLOAD_MB

    command = [sys.executable, "-m", "app.ui.serve", "run", str(APP_MAIN),
               "--server.headless", "true", "--server.port", str(port), "--server.address", address,
               "--server.maxUploadSize", str(MAX_UPLOAD_MB), "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--global.developmentMode", "false",
               "--client.toolbarMode", "minimal", "--", "--root", str(root)]
    if store:
        command += ["--store", store]
    if read_only:
        command.append("--read-only")
    return command


@cli.command("app", epilog=EXIT_CODES_HELP)
def app_command(
    root: Path = typer.Option(Path("index_data"), "--root", metavar="DIR",
                              help="Data folder holding the index (indexes/, metadata.db)."),
    store: str = typer.Option(None, "--store", help="Metadata store URL (default: sqlite:///<root>/metadata.db)."),
    port: int = typer.Option(8501, "--port", "-p", min=1, max=65535, help="Port to serve on."),
    address: str = typer.Option("127.0.0.1", "--address",
                                help="Interface to listen on (0.0.0.0 to share on the network)."),
    read_only: bool = typer.Option(None, "--read-only/--writable",
                                   help="No re-index form and no server paths (default: read-only unless the "
                                        "address is loopback)."),
) -> None:
    """Open the Streamlit app (search, explore, evaluate, index) on http://ADDRESS:PORT."""
    if root.exists() and not root.is_dir():
        raise fail(f"{root}: --root must be a folder", EXIT_USAGE)
    read_only = default_read_only(address, read_only)
    command = streamlit_command(root.expanduser().resolve(), port, address, store, read_only)
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    mode = " (read-only)" if read_only else ""
    typer.echo(f"serving {root} on http://{address}:{port}{mode}", err=True)
    os.execve(sys.executable, command, env)
