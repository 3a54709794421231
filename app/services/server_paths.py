"""Which server paths the app accepts: read-only mode, and re-index inputs kept under the index root.

``posestyle app`` runs read-only (no re-index form, no server path typed anywhere) with
``--read-only`` and by default when it listens on a non-loopback address. Where the re-index form
is shown, a checkpoint or dataset path must lie under the data root (relative paths are taken from
it; symlinks are resolved first), or be the checkpoint of an encoder the store already registered
(one an operator indexed with from the command line).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


class PathNotAllowedError(ValueError):
    """A typed server path outside what the app may touch; ``str(err)`` is one line."""


def is_loopback(address: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if address.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def default_read_only(address: str, read_only: bool | None) -> bool:
    """The app's mode: as asked, else read-only unless it listens on loopback only."""
    return (not is_loopback(address)) if read_only is None else read_only


def allowed_server_path(text: str, root: str | Path, what: str, registered: Iterable[str] = ()) -> Path:
    """``text`` resolved to a path under ``root`` (relative to it when not absolute), or one of
    ``registered``; ``PathNotAllowedError`` naming the path and the root otherwise."""
    base = Path(root).resolve()
    path = Path(text.strip()).expanduser()
    resolved = (path if path.is_absolute() else base / path).resolve()
    if resolved in {Path(r).resolve() for r in registered} or resolved.is_relative_to(base):
        return resolved
    raise PathNotAllowedError(f"{text.strip()}: the {what} must lie under the index root {base}")
