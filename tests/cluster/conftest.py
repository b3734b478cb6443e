"""Fixtures of the cluster tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ray_cluster():
    """A private local Ray cluster of 2 CPUs for one test module; yields its GCS address."""
    import ray

    from cluster.runtime import init_ray

    init_ray(num_cpus=2)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()



@pytest.fixture
def sweep_status():
    """(status, `sweeps.error` tag) of the one parent run of an experiment."""
    from cluster.tracking import ERROR, KIND, Tracker

    def find(uri: str, experiment: str) -> tuple[str, str | None]:
        tracker = Tracker(uri, experiment)
        (run,) = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'sweep'")
        return run.info.status, run.data.tags.get(ERROR)

    return find
