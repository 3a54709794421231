"""Model tests run torch on one thread: the models are tiny, and on a shared machine extra
threads mostly spin waiting for each other."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

# The helper module next to this file (models_support) is imported by plain name; under
# --import-mode=importlib pytest does not put test dirs on sys.path, so do it here.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True, scope="module")
def _few_threads():
    """One torch thread in these tests; the previous setting is restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
