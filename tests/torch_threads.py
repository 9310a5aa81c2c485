"""Torch on one thread for the tests of a folder that trains or merges the tiny model: it gains nothing from more,
and on a shared 2-core machine OpenMP's spinning threads make a busy CPU many times slower.

A folder's conftest imports the fixture (``from torch_threads import one_torch_thread``); it is autouse there.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
