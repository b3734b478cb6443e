"""Fixtures of the bone-age tests: one torch thread, a tiny synthetic set written once."""

from __future__ import annotations

import pytest
import torch

from core.boneage.config import SyntheticConfig
from core.boneage.synthetic import synthetic_sources, write_synthetic


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: tiny convolutions are faster and the 2-core CI machine is not oversubscribed."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    """A small synthetic set in the real layouts: (root, rsna, rhpe, clinical sources)."""
    config = SyntheticConfig(n_rsna=40, n_rhpe=12, n_clinical=30, image_size=40, seed=3)
    root = write_synthetic(config, tmp_path_factory.mktemp("boneage") / "synthetic")
    return (root, *synthetic_sources(root))
