"""A small embedded patch set, generated once per test session."""

from __future__ import annotations

import pytest

from core.patches.config import SyntheticPatchConfig

TINY = SyntheticPatchConfig(studies=40, seed=3)


@pytest.fixture(scope="session")
def tiny_config():
    return TINY


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory):
    from core.patches.synthetic import ensure_synthetic

    return ensure_synthetic(TINY, root=tmp_path_factory.mktemp("patches"), verbose=False)


@pytest.fixture(scope="session")
def tiny_patches(tiny_manifest):
    from core.patches.manifest import load_manifest

    return load_manifest(tiny_manifest)


@pytest.fixture(scope="session")
def tiny_data(tiny_patches):
    from core.patches.dataset import prepare

    return prepare(tiny_patches, 32, in_memory=True, verbose=False)

