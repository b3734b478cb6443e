"""Fixtures of the cluster tests."""

from __future__ import annotations

import time

import pytest


def _idle(ray, wait: float = 5.0) -> bool:
    """True once every CPU and GPU of the cluster is free again (an actor whose last handle is gone
    is stopped asynchronously, so allow it `wait` seconds)."""
    import gc

    gc.collect()  # handles kept alive only by reference cycles
    deadline = time.monotonic() + wait
    while True:
        total, free = ray.cluster_resources(), ray.available_resources()
        if all(free.get(r, 0.0) == total.get(r, 0.0) for r in ("CPU", "GPU")):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


@pytest.fixture(scope="session")
def _ray_session():
    """Shuts down, at the end of the session, the local Ray instance `ray_cluster` left up."""
    yield
    import ray

    ray.shutdown()


@pytest.fixture(scope="module")
def ray_cluster(_ray_session):
    """A private local Ray cluster of 2 CPUs (its GCS address), shared by the modules that ask for
    it: starting one costs ~5 s. A module that leaves CPUs or GPUs held (an actor still alive, a
    placement group) has it shut down, so that the next module starts on a clean one."""
    import ray

    from cluster.runtime import init_ray

    init_ray(num_cpus=2)  # no-op when one is up (an earlier module's, or a job's own local one)
    yield ray.get_runtime_context().gcs_address
    if ray.is_initialized() and not _idle(ray):
        print(f"ray_cluster: resources still held after the module ({ray.available_resources()}): restarting")
        ray.shutdown()


@pytest.fixture(scope="session")
def nb101_reference(tmp_path_factory):
    """`reference(args)`: (store URI, experiment) of the NB-101 sweep `jobs/nb101_sweep.py args`
    run once, uninterrupted, on a file store of its own. The first test asking for the same args
    runs it (on the Ray cluster that test has up), later ones compare against the same runs:
    the suite pays for one reference sweep, not one per test that interrupts a sweep."""
    import jobs.nb101_sweep as job

    done: dict[tuple, tuple[str, str]] = {}

    def reference(args: list[str]) -> tuple[str, str]:
        if tuple(args) not in done:
            store = tmp_path_factory.mktemp("nb101-reference")
            uri, experiment = f"file:{store / 'mlruns'}", "nb101-reference"
            where = ["--tracking-uri", uri, "--set", f"experiment={experiment}"]
            assert job.main([*args, *where, "--output-dir", str(store / "out")]) == 0
            done[tuple(args)] = (uri, experiment)
        return done[tuple(args)]

    return reference


@pytest.fixture
def sweep_status():
    """(status, `sweeps.error` tag) of the one parent run of an experiment."""
    from cluster.tracking import ERROR, KIND, Tracker

    def find(uri: str, experiment: str) -> tuple[str, str | None]:
        tracker = Tracker(uri, experiment)
        (run,) = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'sweep'")
        return run.info.status, run.data.tags.get(ERROR)

    return find


@pytest.fixture(scope="session")
def nb101_small() -> tuple[str, ...]:
    """Arguments of a small NB-101 sweep on the embedded benchmark (the smoke preset's supernets):
    one list for every test that compares against `nb101_reference`, so they share its runs."""
    return (
        "--preset",
        "smoke",
        "--baseline-seeds",
        "2",
        "--set",
        "budget=30",
        "--set",
        "ws_budget=20",
        "--set",
        "supernet.epochs=2",
        "--set",
        "correlation_cells=12",
    )


@pytest.fixture(scope="session")
def boneage_tiny() -> tuple[str, ...]:
    """Arguments that shrink the bone-age job to seconds: a small synthetic set, 32 px, 2 epochs."""
    sizes = ["data.synthetic.n_rsna=48", "data.synthetic.n_rhpe=24", "data.synthetic.n_clinical=40"]
    sizes += ["data.synthetic.image_size=32", "train.image_size=32", "train.batch_size=16"]
    sizes += ["evaluation.n_resamples=200"]
    return (*(arg for value in sizes for arg in ("--set", value)), "--epochs", "2")


# Wall-clock measurements, which differ between two runs of the same unit: timings, rates, where a
# resumed trainer started, and MLflow's system metrics (sampled every 10 s: a unit finishing sooner
# has none, one slowed by a lost server has some)
TIMED_METRICS = ("seconds", "images_per_s", "cells_per_s", "resumed_from_epoch", "system/")


@pytest.fixture(scope="session")
def deterministic():
    """`deterministic(metrics)`: a run's metrics without its wall-clock measurements, the numbers
    two runs of the same unit must agree on."""

    def keep(metrics: dict) -> dict:
        return {k: v for k, v in metrics.items() if not any(t in k for t in TIMED_METRICS)}

    return keep
