"""cluster/runtime.py: how a driver joins Ray. A cluster on other machines gets the project as the
job's runtime_env (unless the driver already runs inside a submitted job); one on this machine's
loopback is joined there; no address starts a private local instance."""

from __future__ import annotations

import pytest

from cluster import runtime
from cluster.tracking import GIT_COMMIT_VARIABLE
from core.paths import REPO_ROOT


@pytest.fixture
def joins(monkeypatch):
    """Calls to ray.init, recorded instead of made (with the loopback-only setting seen then)."""
    import ray

    calls = []

    def init(**kwargs):
        calls.append(kwargs | {"loopback_only": runtime.os.environ.get(runtime.LOOPBACK_ONLY_ENV)})

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(runtime, "describe_cluster", lambda: "Ray cluster")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv(runtime.JOB_CONFIG_ENV, raising=False)
    return calls


def test_a_remote_cluster_gets_the_project_as_the_runtime_env(joins):
    runtime.init_ray("10.1.2.3:6379")
    (call,) = joins
    env = call["runtime_env"]
    assert call["address"] == "10.1.2.3:6379" and call["loopback_only"] is None
    assert env["working_dir"] == str(REPO_ROOT) and ".venv" in env["excludes"] and "*.so" in env["excludes"]
    assert len(env["env_vars"][GIT_COMMIT_VARIABLE]) in (40, len("unknown"))


def test_inside_a_submitted_job_or_on_loopback_nothing_is_shipped(joins, monkeypatch):
    runtime.init_ray("127.0.0.1:6379")
    assert joins[-1]["runtime_env"] is None and joins[-1]["loopback_only"] == "0"
    monkeypatch.setenv(runtime.JOB_CONFIG_ENV, "{}")  # what Ray sets in a job's driver
    monkeypatch.setenv("RAY_ADDRESS", "10.1.2.3:6379")
    runtime.init_ray()
    assert joins[-1]["address"] == "10.1.2.3:6379" and joins[-1]["runtime_env"] is None
    monkeypatch.delenv("RAY_ADDRESS")
    runtime.init_ray(num_cpus=1)
    assert joins[-1]["address"] == "local" and joins[-1]["_node_ip_address"] == "127.0.0.1"
