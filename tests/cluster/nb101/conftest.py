"""Fixtures of the chapter-4 job tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def broken(monkeypatch):
    """Make `name` of a job module raise RuntimeError('<name> broke') when called."""

    def breaks(module, name: str) -> str:
        message = f"{name} broke"

        def fail(*_args, **_kwargs):
            raise RuntimeError(message)

        monkeypatch.setattr(module, name, fail)
        return f"RuntimeError: {message}"

    return breaks
