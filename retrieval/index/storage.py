"""On-disk index versions: ``<indexes>/<version>/{index.faiss, ids.json, manifest.json}``.

Saving is atomic: files go to a hidden temp dir next to the final one, are fsynced, and the dir is
renamed into place, so a version directory either exists complete or not at all. ``manifest.json``
records the SHA-256 and size of every other file; loading checks them before FAISS reads a byte.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from encoder.data.atomic import fsync_dir, write_bytes_durably
from retrieval.index.crashpoints import crash_point
from retrieval.index.errors import IndexBuildError, IndexCorruptError

FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
IDS_FILE = "ids.json"
MANIFEST_FILE = "manifest.json"
TEMP_PREFIX = ".tmp-"
_VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_version_name(version: str) -> str:
    """Refuse names that are not a safe single directory name (letters, digits, ``._-``; <= 128)."""
    if not isinstance(version, str) or not _VERSION_NAME.match(version):
        raise IndexBuildError(f"index version name {version!r} must be 1-128 letters, digits, '.', '_' or '-', "
                              f"starting with a letter or digit")
    return version


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class IndexFiles:
    """A loaded index version: the FAISS index, its id map and its manifest."""

    path: Path
    index: faiss.Index
    sequence_ids: list[str]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.manifest["version"])


def save_index_version(directory: Path, index: faiss.Index, sequence_ids: list[str],
                       manifest_fields: dict[str, Any]) -> dict[str, Any]:
    """Write a complete version directory atomically; refuses to overwrite an existing one.

    Returns the manifest written (``manifest_fields`` plus format, count, dim, created, files)."""
    directory = Path(directory)
    if directory.exists():
        raise IndexBuildError(f"{directory}: index version directory already exists")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f"{TEMP_PREFIX}{directory.name}-{uuid.uuid4().hex}")
    tmp.mkdir()
    try:
        payloads = {
            INDEX_FILE: faiss.serialize_index(index).tobytes(),
            IDS_FILE: json.dumps(sequence_ids, ensure_ascii=False).encode("utf-8"),
        }
        manifest = {
            "format": FORMAT_VERSION,
            **manifest_fields,
            "count": int(index.ntotal),
            "dim": int(index.d),
            "created": datetime.now(timezone.utc).isoformat(),
            "files": {name: {"sha256": sha256_bytes(data), "bytes": len(data)} for name, data in payloads.items()},
        }
        for name, data in payloads.items():
            write_bytes_durably(tmp / name, data)
        write_bytes_durably(tmp / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
        fsync_dir(tmp)
        crash_point("save-temp-written")
        os.rename(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(directory.parent)
    return manifest


def read_manifest(directory: Path) -> dict[str, Any]:
    """The parsed manifest of a version directory, or ``IndexCorruptError``."""
    path = Path(directory) / MANIFEST_FILE
    if not Path(directory).is_dir():
        raise IndexCorruptError(directory, "index version directory is missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(path, "manifest is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(path, f"manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise IndexCorruptError(path, f"manifest format is not {FORMAT_VERSION}")
    for key in ("version", "count", "dim", "spec", "files"):
        if key not in manifest:
            raise IndexCorruptError(path, f"manifest lacks {key!r}")
    return manifest


def _checked_bytes(directory: Path, name: str, manifest: dict[str, Any]) -> bytes:
    entry = manifest["files"].get(name)
    path = directory / name
    if not isinstance(entry, dict) or "sha256" not in entry:
        raise IndexCorruptError(path, "file is not listed in the manifest")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IndexCorruptError(path, "file is missing") from None
    except OSError as exc:
        raise IndexCorruptError(path, f"file cannot be read ({exc.strerror})") from None
    if "bytes" in entry and len(data) != entry["bytes"]:
        raise IndexCorruptError(path, f"file is truncated or padded: {len(data)} bytes, manifest says {entry['bytes']}")
    if sha256_bytes(data) != entry["sha256"]:
        raise IndexCorruptError(path, "checksum mismatch: the file changed since it was written")
    return data


def load_index_version(directory: Path) -> IndexFiles:
    """Load a version directory, checking checksums, FAISS readability, count, dimension and id map.

    Every problem raises a one-line ``IndexCorruptError(path, problem)``."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    index_bytes = _checked_bytes(directory, INDEX_FILE, manifest)
    ids_bytes = _checked_bytes(directory, IDS_FILE, manifest)
    index_path = directory / INDEX_FILE
    try:
        index = faiss.deserialize_index(np.frombuffer(index_bytes, dtype=np.uint8))
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        raise IndexCorruptError(index_path, f"not a readable FAISS index ({detail})") from None
    if index.d != manifest["dim"] or index.ntotal != manifest["count"]:
        raise IndexCorruptError(index_path, f"index holds {index.ntotal} vectors of dim {index.d}, manifest says "
                                            f"{manifest['count']} of dim {manifest['dim']}")
    ids_path = directory / IDS_FILE
    try:
        sequence_ids = json.loads(ids_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(ids_path, f"id map is not valid JSON ({exc})") from None
    if not isinstance(sequence_ids, list) or not all(isinstance(s, str) for s in sequence_ids):
        raise IndexCorruptError(ids_path, "id map must be a JSON list of sequence id strings")
    if len(sequence_ids) != index.ntotal:
        raise IndexCorruptError(ids_path, f"id map has {len(sequence_ids)} ids for {index.ntotal} vectors")
    if len(set(sequence_ids)) != len(sequence_ids):
        raise IndexCorruptError(ids_path, "id map repeats a sequence id")
    return IndexFiles(path=directory, index=index, sequence_ids=sequence_ids, manifest=manifest)
