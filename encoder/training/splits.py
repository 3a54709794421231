"""Train/val/test splits: split files by prefix (``<prefix>-train.txt`` ...) or an automatic one.

- a prefix such as ``.../splits/random`` names ``random-train.txt``, ``random-val.txt`` and
  ``random-test.txt`` (one take name per line; blank lines and ``#`` comments ignored);
- a single ``.txt`` file is one part (e.g. the queries of an evaluation);
- ``auto``: stratified by label, 70/10/20, shuffled by a seeded generator (for the demo corpus).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from encoder.data.dataset import read_split_file
from encoder.data.errors import PoseDataError

PARTS: tuple[str, ...] = ("train", "val", "test")
AUTO = "auto"
AUTO_FRACTIONS: tuple[float, float, float] = (0.7, 0.1, 0.2)


def read_names(path: str | Path) -> list[str]:
    """Names listed in a split file (``read_split_file``); an empty list is refused."""
    names = read_split_file(path)
    if not names:
        raise PoseDataError(path, "split file lists no names")
    return names


def stratified_split(names: Sequence[str], labels: Sequence[str | None], seed: int,
                     fractions: tuple[float, float, float] = AUTO_FRACTIONS) -> dict[str, list[str]]:
    """Per label: shuffle (seeded), then cut into train/val/test by ``fractions`` (val/test rounded).

    Every label with at least 3 items gets at least one item in each part; unlabelled names are left out.
    """
    if len(names) != len(labels):
        raise ValueError("names and labels differ in length")
    by_label: dict[str, list[str]] = defaultdict(list)
    for name, label in zip(names, labels):
        if label is not None:
            by_label[label].append(name)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[str]] = {p: [] for p in PARTS}
    for label in sorted(by_label):
        members = sorted(by_label[label])
        members = [members[i] for i in rng.permutation(len(members))]
        n = len(members)
        n_val = int(round(fractions[1] * n))
        n_test = int(round(fractions[2] * n))
        if n >= 3:
            n_val, n_test = max(n_val, 1), max(n_test, 1)
        n_train = max(n - n_val - n_test, 1 if n else 0)
        parts["train"] += members[:n_train]
        parts["val"] += members[n_train:n_train + n_val]
        parts["test"] += members[n_train + n_val:]
    return parts


def split_prefix_files(prefix: str | Path) -> dict[str, Path]:
    """``<prefix>-{train,val,test}.txt`` for a split prefix (only the files that exist)."""
    prefix = Path(prefix)
    files = {p: prefix.with_name(f"{prefix.name}-{p}.txt") for p in PARTS}
    return {p: f for p, f in files.items() if f.is_file()}


def resolve_split(spec: str, names: Sequence[str], labels: Sequence[str | None],
                  seed: int = 0) -> dict[str, list[str]]:
    """The train/val/test names of ``spec`` (a prefix or ``auto``) within a dataset's ``names``.

    Names listed in a split file but absent from the dataset raise ``PoseDataError`` (a wrong
    dataset/split pairing must not silently shrink the experiment).
    """
    if spec == AUTO:
        return stratified_split(names, labels, seed)
    files = split_prefix_files(spec)
    if not files:
        raise PoseDataError(spec, "no split files: expected "
                            f"{Path(spec).name}-train.txt, -val.txt, -test.txt beside it, or 'auto'")
    known = set(names)
    parts: dict[str, list[str]] = {p: [] for p in PARTS}
    for part, path in files.items():
        listed = read_names(path)
        missing = [n for n in listed if n not in known]
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise PoseDataError(path, f"{len(missing)} listed name(s) are not in the dataset: {shown}")
        parts[part] = listed
    return parts


def resolve_names(spec: str, names: Sequence[str], labels: Sequence[str | None], seed: int = 0,
                  default_parts: Iterable[str] = ("test",)) -> list[str]:
    """Names of one evaluation set: a split file, a prefix (its ``default_parts``), or ``auto``.

    ``spec`` may also be ``<prefix-or-auto>:<part>[+<part>]``, e.g. ``auto:train+val``.
    """
    base, _, part_spec = spec.partition(":")
    wanted = part_spec.split("+") if part_spec else list(default_parts)
    bad = [p for p in wanted if p not in PARTS]
    if bad:
        raise PoseDataError(spec, f"unknown split part(s) {bad}; parts are {', '.join(PARTS)}")
    path = Path(base)
    if base != AUTO and path.is_file():
        listed = read_names(path)
        missing = [n for n in listed if n not in set(names)]
        if missing:
            raise PoseDataError(path, f"{len(missing)} listed name(s) are not in the dataset, e.g. {missing[0]}")
        return listed
    parts = resolve_split(base, names, labels, seed)
    out: list[str] = []
    for p in wanted:
        out += parts[p]
    return list(dict.fromkeys(out))
