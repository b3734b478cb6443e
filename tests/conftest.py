"""Fixtures for every test package: the real NB-101 data shipped with the project, the enumerated
space, a tracking server."""

from __future__ import annotations

import pytest

from core.nb101.real_subset import REAL_SUBSET_DIR, load_real_subset


@pytest.fixture(scope="session")
def real_nb101():
    """The 151,644 real NB-101 cells of `core/nb101/data/real_subset/` as numpy arrays."""
    return load_real_subset()


@pytest.fixture(scope="session")
def nb101_dir():
    """The folder of the real NB-101 files (parts, golden values, raw record, NASLib pickle)."""
    return REAL_SUBSET_DIR


@pytest.fixture(scope="session")
def full_space():
    """The whole NB-101 space, built by the current code (not read from a cache)."""
    from core.nb101.space import build_space

    return build_space(verbose=False)


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory):
    """A real MLflow tracking server (SQLite backend) for tests where several processes log at
    once, as on a cluster; each test uses its own experiment names."""
    import socket

    from mlflow_server.server import ServerConfig, start, stop

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path_factory.mktemp("mlflow-server")
    url = start(ServerConfig(home=home, port=port))
    yield url
    stop(home)


@pytest.fixture
def experiment(request) -> str:
    """An experiment name unique to the test."""
    import uuid

    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"
