"""Connecting to Ray: an existing cluster (address or RAY_ADDRESS) or a local one on 127.0.0.1.

A driver that joins a cluster on other machines from outside a Ray job (`--ray-address
HEAD:6379`) ships the project to the workers itself: its runtime_env is this checkout as the
working directory (`project_runtime_env`), so no node needs a copy of the code. A job started by
`ray job submit --working-dir .` already runs in that runtime_env, and its workers inherit it.
The dependencies (and the compiled NB-101 kernel) come from the environment every node runs,
installed from the project's wheel (docs/deployment.md).
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext

from core.paths import REPO_ROOT
from core.progress import Progress
from core.security import is_loopback

# What never travels with the code: environments, caches, results, builds (compiled libraries
# come from the wheel installed on every node).
PROJECT_EXCLUDES = [".venv", ".cache", "mlruns", "outputs", ".git", "*.so", "__pycache__", "build", "dist"]
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray in the driver of a submitted job

# Ray replaces a node address of 127.0.0.1 by the machine's interface address and binds its
# daemons to that address or to every interface, unless this is "0": then the node keeps
# 127.0.0.1 and every port Ray opens is on loopback (and no other node can join).
LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextmanager
def loopback_only():
    """While a local Ray instance starts in this process: every daemon it starts (they inherit
    the environment) and this driver listen on 127.0.0.1 only. Restored afterwards, so that the
    same process can still join a multi-node cluster later."""
    from ray._private import ray_constants

    saved_env, saved_flag = os.environ.get(LOOPBACK_ONLY_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOOPBACK_ONLY_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False  # read at import time; services reads the attribute
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(LOOPBACK_ONLY_ENV, None)
        else:
            os.environ[LOOPBACK_ONLY_ENV] = saved_env


def is_local_address(address: str) -> bool:
    """Whether a Ray address ('host:port', 'ray://host:port', 'http://host:port') is on this
    machine's loopback interface."""
    return is_loopback(address.split("://", 1)[-1].rsplit(":", 1)[0])


def project_runtime_env(env_vars: dict | None = None) -> dict:
    """This checkout as a Ray runtime_env: uploaded once per job, unpacked on every node that
    runs its work, first on the workers' import path."""
    env = {"working_dir": str(REPO_ROOT), "excludes": list(PROJECT_EXCLUDES)}
    return env | ({"env_vars": dict(env_vars)} if env_vars else {})


def _shipped() -> dict:
    """The project's runtime_env with the commit it was shipped from (the copy has no .git)."""
    from cluster.tracking import GIT_COMMIT_VARIABLE, GIT_DIRTY_VARIABLE, git_state

    commit, dirty = git_state()
    return project_runtime_env({GIT_COMMIT_VARIABLE: commit, GIT_DIRTY_VARIABLE: dirty})


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at `address` (or $RAY_ADDRESS, as set by `ray job submit`), else start
    a private local cluster (never one found on the machine) without the dashboard, listening on
    127.0.0.1 only. A cluster joined on 127.0.0.1 is joined there, not on the interface address;
    one on other machines, from outside a submitted job, gets the project as its runtime_env."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        local = is_local_address(address)
        ship = not local and JOB_CONFIG_ENV not in os.environ
        with loopback_only() if local else nullcontext():
            ray.init(address=address, log_to_driver=True, runtime_env=_shipped() if ship else None)
        print(describe_cluster() + ("; the project travels as the job's working_dir" if ship else ""))
    else:
        with loopback_only():
            ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                log_to_driver=True,
            )


def describe_cluster() -> str:
    """'Ray cluster at ADDRESS: N nodes, C CPUs, G GPUs' (alive nodes, from the GCS)."""
    import ray

    alive = [n for n in ray.nodes() if n.get("Alive")]
    cpus = sum(n["Resources"].get("CPU", 0.0) for n in alive)
    gpus = sum(n["Resources"].get("GPU", 0.0) for n in alive)
    where = ray.get_runtime_context().gcs_address
    return f"Ray cluster at {where}: {len(alive)} node(s), {cpus:g} CPU(s), {gpus:g} GPU(s)"


def wait_all(refs: list, progress: Progress | None = None, weights: dict | None = None) -> list:
    """Results of Ray object refs in completion order, advancing `progress` as each finishes."""
    import ray

    pending, results = list(refs), []
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            results.append(ray.get(ref))
            if progress:
                progress.update(weights.get(ref, 1) if weights else 1)
    return results
