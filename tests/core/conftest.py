"""Fixtures of the core tests."""

from __future__ import annotations

import pytest

# Packages whose tests train tiny convolutional networks: one intra-op thread is faster there,
# and the 2-core CI machine is not oversubscribed.
ONE_THREAD = {"boneage", "detection", "patches"}


@pytest.fixture(autouse=True)
def one_torch_thread(request):
    """One torch thread for the tests of the ONE_THREAD packages, restored afterwards."""
    if request.path.parent.name not in ONE_THREAD:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
