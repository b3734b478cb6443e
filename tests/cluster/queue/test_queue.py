"""The job queue against a real local Ray cluster: priority order, cancel, a dispatcher and a
Ray head killed mid-job, concurrent submitters, dedup, bad input, a real job's result."""

from __future__ import annotations

import importlib.util
import multiprocessing
import time

import pytest

from cluster.queue.client import Client, ClusterUnreachable
from cluster.queue.registry import JobSpec, register
from core.config import ConfigError
from core.paths import REPO_ROOT

PROBE = "tests/cluster/queue/probe_job.py"


def _probe_model():
    spec = importlib.util.spec_from_file_location("probe_job", REPO_ROOT / PROBE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ProbeConfig


def _register_probe():
    register(JobSpec("probe", PROBE, _probe_model()))


@pytest.fixture(scope="module")
def head(ray_head):
    """The shared test head (tests/conftest.py), with the probe job registered."""
    _register_probe()
    return ray_head


def _drive(client: Client, handles, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.dispatch()
        if all(h.status() in ("SUCCEEDED", "FAILED", "CANCELLED") for h in handles):
            return
        time.sleep(1.5)
    raise TimeoutError([h.status() for h in handles])


def test_three_jobs_run_one_after_another_in_priority_order(head, tmp_path):
    client = Client(head.address, queue_path=str(tmp_path / "q.db"), max_running=1)
    handles = [
        client.submit(
            "probe", {"units": 1, "seconds": 0.2, "out_dir": str(tmp_path / name)}, priority=p, name=name
        )
        for name, p in (("low", 0), ("high", 5), ("mid", 1))
    ]
    _drive(client, handles)
    jobs = sorted((h.info() for h in handles), key=lambda j: j.started_at)
    assert [j.name for j in jobs] == ["high", "mid", "low"]
    assert all(j.status == "SUCCEEDED" for j in jobs)
    for earlier, later in zip(jobs, jobs[1:]):
        assert later.started_at >= earlier.ended_at  # never two at once
    assert "probe finished" in handles[0].logs()


def test_cancel_stops_ray_and_marks_mlflow_runs_killed(head, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"file:{tmp_path / 'mlruns'}"
    client = Client(head.address, tracking_uri=uri, queue_path=str(tmp_path / "q.db"))
    handle = client.submit("probe", {"units": 40, "seconds": 1.0, "out_dir": str(tmp_path / "long")})
    deadline = time.monotonic() + 300
    while not (tmp_path / "long" / "unit0.done").exists():
        client.dispatch()
        assert time.monotonic() < deadline and handle.status() != "FAILED", handle.logs()
        time.sleep(1)
    handle.cancel()
    _drive(client, [handle], timeout=120)
    assert handle.status() == "CANCELLED"
    from ray.job_submission import JobSubmissionClient

    assert (
        str(JobSubmissionClient(head.address).get_job_status(handle.info().submission_id).value) == "STOPPED"
    )
    mlflow = MlflowClient(uri)
    runs = mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()], "")
    assert runs and all(r.info.status in ("KILLED", "FINISHED") for r in runs)
    assert any(r.info.status == "KILLED" and r.data.tags.get("sweeps.queue_job") == handle.id for r in runs)
    assert len(list((tmp_path / "long").glob("*.done"))) < 40


def test_dispatcher_and_head_killed_mid_job_then_restarted(head, tmp_path):
    out = tmp_path / "resumable"
    client = Client(head.address, queue_path=str(tmp_path / "q.db"))
    handle = client.submit("probe", {"units": 6, "seconds": 1.5, "out_dir": str(out)})
    deadline = time.monotonic() + 300
    while len(list(out.glob("*.done"))) < 2:
        client.dispatch()
        assert time.monotonic() < deadline
        time.sleep(0.5)
    head.stop()  # the dispatcher (this client) stops too: nothing runs dispatch meanwhile
    assert handle.status() == "RUNNING"
    head.start()
    restarted = Client(head.address, queue_path=str(tmp_path / "q.db"))
    _drive(restarted, [restarted.handle(handle.id)])
    job = restarted.handle(handle.id).info()
    assert job.status == "SUCCEEDED" and job.attempts == 1  # re-queued once, then finished
    done_lines = [line for line in (out / "log.txt").read_text().splitlines() if line.startswith("done")]
    assert sorted(done_lines) == sorted(f"done {i}" for i in range(6))  # each unit finished exactly once


def _submit_many(args):
    path, worker = args
    _register_probe()
    client = Client("http://127.0.0.1:1", queue_path=path)
    ids = [client.submit("probe", {"units": 1, "out_dir": f"/tmp/never/{worker}/{i}"}).id for i in range(50)]
    shared = client.submit("probe", {"units": 1, "out_dir": "/tmp/never/shared"}).id
    return ids, shared


def test_eight_processes_submit_concurrently(tmp_path):
    path = str(tmp_path / "q.db")
    Client(queue_path=path)  # create the file once
    # spawn, not fork: a fork of this process (Ray's and gRPC's threads running) can hang on a lock
    # one of them held; a fork child stuck on a futex kept `make test` waiting forever
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        results = pool.map(_submit_many, [(path, w) for w in range(8)])
    ids = [i for r in results for i in r[0]]
    assert len(ids) == 400 and len(set(ids)) == 400
    assert len({r[1] for r in results}) == 1  # the identical config was queued once
    assert len(Client(queue_path=path).list()) == 401


def test_duplicates_and_bad_input(tmp_path):
    _register_probe()
    client = Client("http://127.0.0.1:1", queue_path=str(tmp_path / "q.db"))
    a = client.submit("probe", {"out_dir": "/tmp/x"})
    assert client.submit("probe", {"out_dir": "/tmp/x"}).id == a.id
    assert client.submit("probe", {"out_dir": "/tmp/x"}, force=True).id != a.id
    with pytest.raises(ConfigError, match=r"unknown job 'nb101_swep'; known jobs: \[.*'nb101_sweep'"):
        client.submit("nb101_swep", {})
    with pytest.raises(ConfigError, match="ws_seedz: Extra inputs are not permitted"):
        client.submit("nb101_sweep", {"ws_seedz": 3})
    with pytest.raises(ConfigError, match="supernet.epochz: Extra inputs are not permitted"):
        client.submit("nb101_sweep", {"supernet": {"epochz": 3}})
    with pytest.raises(
        ClusterUnreachable, match="cannot reach the Ray cluster's job API at http://127.0.0.1:1"
    ):
        client.dispatch()
    a.cancel()
    assert a.status() == "CANCELLED"  # a pending job is cancelled without Ray
    from cluster.queue.__main__ import main

    assert main(["--queue", str(tmp_path / "q.db"), "submit", "nope"]) == 2


def test_a_real_sweep_through_the_queue(head, tmp_path, real_nb101, tracking_server):
    uri = tracking_server
    client = Client(head.address, tracking_uri=uri, queue_path=str(tmp_path / "q.db"))
    handle = client.submit(
        "nb101_baselines",
        {
            "benchmark": "real-subset",
            "spaces": ["A2"],
            "seeds": 2,
            "budget": 40,
            "output_dir": str(tmp_path / "out"),
        },
    )
    _drive(client, [handle], timeout=600)
    assert handle.status() == "SUCCEEDED", handle.logs()
    result = handle.result()
    assert result["metrics"]["units"] == 4
    assert "| A2 | RS | 2 |" in result["tables"]["final_regret.md"]
