"""Fixtures of the bone-age tests: a tiny synthetic set written once (one torch thread: ../conftest.py)."""

from __future__ import annotations

import pytest

from core.boneage.config import SyntheticConfig
from core.boneage.synthetic import synthetic_sources, write_synthetic


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    """A small synthetic set in the real layouts: (root, rsna, rhpe, clinical sources)."""
    config = SyntheticConfig(n_rsna=40, n_rhpe=12, n_clinical=30, image_size=40, seed=3)
    root = write_synthetic(config, tmp_path_factory.mktemp("boneage") / "synthetic")
    return (root, *synthetic_sources(root))
