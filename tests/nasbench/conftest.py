"""Fixtures for the drop-in NB-101 API: the real subset as a store, opened once per session."""

from __future__ import annotations

import pytest

from core.nb101.cache import cached_store
from core.nb101.real_subset import REAL_SUBSET_DIR


@pytest.fixture(scope="session")
def real_store(tmp_path_factory):
    """The 151,644 real cells as a Parquet store (what NASBench caches for the real-subset folder)."""
    return cached_store(REAL_SUBSET_DIR, verbose=False, root=tmp_path_factory.mktemp("stores"))


@pytest.fixture(scope="session")
def real_api(real_store):
    """`api.NASBench` over the real subset (tests reseed `random` themselves where draws matter)."""
    from nasbench import api

    return api.NASBench(real_store, seed=0)


@pytest.fixture
def cache_here(tmp_path, monkeypatch):
    """Send NASBench's import cache to a fresh folder for this test."""
    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
