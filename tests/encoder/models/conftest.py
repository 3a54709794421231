"""Model tests run torch on one thread: the models are tiny, and on a shared machine extra
threads mostly spin waiting for each other."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _few_threads():
    """One torch thread in these tests; the previous setting is restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
