"""Label sources for ingest: where a sequence's label and metadata come from.

Three kinds, all answering ``lookup(name, source) -> LabelInfo | None``:
- ``PatternLabels``: a regular expression over the sequence name; every named group goes into
  the metadata and the ``label`` group (or another chosen group) is the label.
- ``CsvLabels``: a CSV sidecar with columns ``name,label`` plus any others (-> metadata; a ``tags``
  column is split on ``;`` or ``|`` into a list).
- presets: ``bandai-namco`` (the dataset's file-name convention) and ``demo`` (the demo corpus's
  ``labels.csv``), built by ``preset_labels``.
"""
from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from encoder.data.errors import PoseDataError

# Bandai-Namco-Research-Motiondataset-2 names: dataset-2_{content}_{style}_{take}.
BANDAI_NAMCO_PATTERN = r"dataset-2_(?P<content>[^_]+)_(?P<style>[^_]+)_(?P<take>\d+)"
DEMO_LABELS_FILENAME = "labels.csv"
PRESETS: tuple[str, ...] = ("bandai-namco", "demo")

_TAG_SEPARATORS = re.compile(r"[;|]")


@dataclass(frozen=True)
class LabelInfo:
    """The label (None: unlabelled) and extra metadata a label source gives one sequence."""

    label: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


class LabelSource(Protocol):
    """Anything that labels sequences by name; ``describe()`` is recorded in the dataset manifest."""

    def lookup(self, name: str, source: str | Path) -> LabelInfo | None: ...

    def describe(self) -> dict[str, Any]: ...


class PatternLabels:
    """Labels from a regular expression searched in the sequence name (then the file stem)."""

    def __init__(self, pattern: str, label_group: str = "label", preset: str | None = None) -> None:
        try:
            self.regex = re.compile(pattern)
        except re.error as err:
            raise PoseDataError("--label-pattern", f"invalid regular expression {pattern!r}: {err}") from None
        if not self.regex.groupindex:
            raise PoseDataError("--label-pattern", f"{pattern!r} has no named group; "
                                "use (?P<label>...) for the label")
        if label_group not in self.regex.groupindex:
            raise PoseDataError("--label-pattern", f"{pattern!r} has no (?P<{label_group}>...) group")
        self.pattern = pattern
        self.label_group = label_group
        self.preset = preset

    def lookup(self, name: str, source: str | Path) -> LabelInfo | None:
        """Match the name, else the source file's stem; None when neither matches."""
        for candidate in (name, Path(source).stem):
            match = self.regex.search(candidate)
            if match:
                groups = {k: v for k, v in match.groupdict().items() if v is not None}
                return LabelInfo(label=groups.get(self.label_group), metadata=groups)
        return None

    def describe(self) -> dict[str, Any]:
        desc: dict[str, Any] = {"kind": "pattern", "pattern": self.pattern, "label_group": self.label_group}
        if self.preset:
            desc["preset"] = self.preset
        return desc


class CsvLabels:
    """Labels from a CSV sidecar: ``name,label`` plus any other columns as metadata.

    Names are matched against the sequence name, then the source file name, then its stem, so a
    CSV may list ``walk_01`` or ``walk_01.bvh``.
    """

    def __init__(self, path: str | Path, preset: str | None = None) -> None:
        self.path = Path(path)
        self.preset = preset
        try:
            raw = self.path.read_bytes()
        except OSError as err:
            raise PoseDataError(self.path, f"cannot read labels CSV: {err.strerror or err}") from None
        self.sha256 = hashlib.sha256(raw).hexdigest()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise PoseDataError(self.path, "labels CSV is not UTF-8 text") from None
        self.entries = self._parse(text)

    def _parse(self, text: str) -> dict[str, LabelInfo]:
        reader = csv.reader(text.splitlines())
        header = next(reader, None)
        if header is None:
            raise PoseDataError(self.path, "labels CSV is empty; it needs a header with columns name,label")
        columns = [h.strip().lower() for h in header]
        missing = [c for c in ("name", "label") if c not in columns]
        if missing:
            found = ", ".join(c for c in columns if c) or "none"
            raise PoseDataError(self.path, f"labels CSV needs columns name and label; missing "
                                f"{', '.join(missing)} (found: {found})")
        name_col, label_col = columns.index("name"), columns.index("label")
        entries: dict[str, LabelInfo] = {}
        for line_no, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(columns):
                raise PoseDataError(self.path, f"line {line_no}: {len(row)} cells but the header has "
                                    f"{len(columns)} columns")
            cells = [cell.strip() for cell in row] + [""] * (len(columns) - len(row))
            name = cells[name_col]
            if not name:
                raise PoseDataError(self.path, f"line {line_no}: empty name")
            metadata: dict[str, Any] = {}
            for col, cell in zip(columns, cells):
                if col in ("name", "label") or not col or cell == "":
                    continue
                metadata[col] = ([t.strip() for t in _TAG_SEPARATORS.split(cell) if t.strip()]
                                 if col == "tags" else cell)
            info = LabelInfo(label=cells[label_col] or None, metadata=metadata)
            if name in entries and entries[name] != info:
                raise PoseDataError(self.path, f"line {line_no}: {name!r} is listed twice with different values")
            entries[name] = info
        return entries

    def lookup(self, name: str, source: str | Path) -> LabelInfo | None:
        src = Path(source)
        for key in (name, src.name, src.stem):
            if key in self.entries:
                return self.entries[key]
        return None

    def describe(self) -> dict[str, Any]:
        desc: dict[str, Any] = {"kind": "csv", "path": str(self.path.resolve()), "sha256": self.sha256,
                                "rows": len(self.entries)}
        if self.preset:
            desc["preset"] = self.preset
        return desc


def find_demo_labels(paths: list[Path]) -> Path:
    """The demo corpus's labels.csv: in an ingested folder, or beside an ingested file or list."""
    for path in paths:
        folder = path if path.is_dir() else path.parent
        candidate = folder / DEMO_LABELS_FILENAME
        if candidate.is_file():
            return candidate
    raise PoseDataError("--preset demo", f"no {DEMO_LABELS_FILENAME} in the ingested folder(s); write the "
                        "corpus with `posestyle demo-corpus --out DIR` and ingest one view folder (DIR/2d or DIR/3d)")


def preset_labels(name: str, paths: list[Path]) -> LabelSource:
    """A built-in label source by name (``bandai-namco`` or ``demo``); ``paths`` are the ingest inputs."""
    if name == "bandai-namco":
        return PatternLabels(BANDAI_NAMCO_PATTERN, label_group="style", preset=name)
    if name == "demo":
        return CsvLabels(find_demo_labels(paths), preset=name)
    raise PoseDataError("--preset", f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
