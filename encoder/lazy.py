"""Lazy package exports (PEP 562): a package lists the names it exports and the submodule of each;
a name's submodule is imported on first use, so importing one light submodule of the package never
loads its heavy siblings (torch, faiss, matplotlib)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose ``exports`` map each name to its submodule."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(exports[name]), name)

    def __dir__() -> list[str]:
        return sorted(set(exports) | set(vars(import_module(package))))

    return __getattr__, __dir__
