"""Model tests run torch on one thread: the models are tiny, and on a shared machine extra
threads mostly spin waiting for each other."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from encoder.inference import torch_threads


@pytest.fixture(autouse=True, scope="module")
def _few_threads() -> Iterator[None]:
    """One torch thread in these tests; the previous setting is restored afterwards."""
    with torch_threads(1):
        yield
