"""Fixtures of the chapter-4 job tests."""

from __future__ import annotations

import pytest

from cluster.tracking import ERROR, KIND, Tracker


@pytest.fixture
def sweep_status():
    """(status, `sweeps.error` tag) of the one parent run of an experiment."""

    def find(uri: str, experiment: str) -> tuple[str, str | None]:
        tracker = Tracker(uri, experiment)
        (run,) = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'sweep'")
        return run.info.status, run.data.tags.get(ERROR)

    return find


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
