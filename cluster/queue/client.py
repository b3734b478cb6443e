"""Queue jobs on a Ray cluster from a notebook or a script, and come back later.

    from cluster.queue.client import Client
    client = Client(address="http://127.0.0.1:8265", tracking_uri="http://127.0.0.1:5000")
    handle = client.submit(job="nb101_sweep", config={"ws_seeds": 5}, priority=1)
    handle.status(); handle.logs(); handle.wait(timeout=3600); handle.result()

Jobs wait in a durable SQLite queue (cluster/queue/store.py); a dispatcher (`python -m
cluster.queue dispatch`, or `Client.dispatch()`) starts them through Ray's JobSubmissionClient
while at most N run, highest priority first, and reconciles with Ray after restarts.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

from cluster.queue.registry import CONFIG_VARIABLE, lookup
from cluster.queue.store import ACTIVE, TERMINAL, JobQueue, QueuedJob
from cluster.runtime import project_runtime_env
from cluster.tracking import (
    GIT_COMMIT_VARIABLE,
    GIT_DIRTY_VARIABLE,
    QUEUE_JOB,
    QUEUE_JOB_VARIABLE,
    TrackingServer,
    git_state,
)
from core.config import ConfigError
from core.keys import stable_key
from core.paths import cache_dir
from mlflow_server.uri import ENV as TRACKING_VARIABLE
from mlflow_server.uri import resolve


class ClusterUnreachable(ConnectionError):
    """The Ray cluster's job API does not answer at the given address."""


def default_queue_path():
    return os.environ.get("SWEEPS_QUEUE", str(cache_dir() / "queue" / "jobs.db"))


def ray_jobs(address: str):
    """Ray's JobSubmissionClient for `address`, or ClusterUnreachable naming the address."""
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as err:  # ConnectionError, timeouts, auth errors: all mean "cannot use it"
        raise ClusterUnreachable(f"cannot reach the Ray cluster's job API at {address}: {err}") from None


@dataclass
class Client:
    address: str = "http://127.0.0.1:8265"
    tracking_uri: str | None = None
    queue_path: str = field(default_factory=default_queue_path)
    max_running: int = 1

    def __post_init__(self):
        self.queue = JobQueue(self.queue_path)
        # the jobs' rule: given, else MLFLOW_TRACKING_URI (a queued job gets it in its config, as
        # Ray's job does not inherit this process's environment), else each job's local server
        self.tracking_uri = self.tracking_uri or os.environ.get(TRACKING_VARIABLE) or None

    # ---- queueing ------------------------------------------------------------------------
    def submit(
        self,
        job: str,
        config: dict | None = None,
        priority: int = 0,
        name: str | None = None,
        force: bool = False,
    ) -> JobHandle:
        """Queue a registered job with a config its model accepts; an identical config already
        queued or running returns that job's handle (unless force=True)."""
        spec = lookup(job)
        config = dict(config or {})
        if self.tracking_uri and "tracking_uri" not in config:
            config["tracking_uri"] = self.tracking_uri
        spec.validate(config)  # a ConfigError naming the key, before anything is queued
        key = stable_key({"job": job, "config": config})
        queued, _ = self.queue.add(job, config, key, priority, name, force)
        return JobHandle(self, queued.id)

    def list(self, status: str | None = None) -> list[QueuedJob]:
        return self.queue.list(status)

    def handle(self, job_id: str) -> JobHandle:
        self.queue.get(job_id)
        return JobHandle(self, job_id)

    # ---- dispatching ---------------------------------------------------------------------
    def dispatch(self) -> dict:
        """One dispatcher pass: reconcile running jobs with Ray, then start pending ones."""
        from cluster.queue.dispatcher import Dispatcher

        return Dispatcher(self).step()


@dataclass
class JobHandle:
    client: Client
    id: str

    def info(self) -> QueuedJob:
        return self.client.queue.get(self.id)

    def status(self) -> str:
        return self.info().status

    def cancel(self) -> str:
        """Cancel: a pending job never starts; a running one is stopped in Ray and its MLflow
        runs are marked KILLED (by the dispatcher once Ray reports it stopped)."""
        job = self.client.queue.request_cancel(self.id)
        if job.status == "RUNNING" and job.submission_id:
            ray_jobs(self.client.address).stop_job(job.submission_id)
        return job.status

    def wait(self, timeout: float | None = None, poll: float = 2.0, dispatch: bool = False) -> str:
        """Block until the job ends (`dispatch=True`: drive the dispatcher meanwhile)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if dispatch:
                self.client.dispatch()
            status = self.status()
            if status in TERMINAL:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} still {status} after {timeout} s")
            time.sleep(poll)

    def logs(self, follow: bool = False, poll: float = 2.0) -> str:
        """The job's driver output so far (`follow=True`: print it as it grows until the end)."""
        job = self.info()
        if not job.submission_id:
            return ""
        client = ray_jobs(self.client.address)
        if not follow:
            return client.get_job_logs(job.submission_id)
        shown = 0
        while True:
            text = client.get_job_logs(job.submission_id)
            print(text[shown:], end="", flush=True)
            shown = len(text)
            if self.status() in TERMINAL:
                return text
            time.sleep(poll)

    def result(self) -> dict:
        """The MLflow parent run of a finished job: run id, metrics and its summary tables."""
        job = self.info()
        if job.status != "SUCCEEDED":
            raise RuntimeError(f"job {self.id} is {job.status}: no result")
        uri = self.client.tracking_uri or job.config.get("tracking_uri")
        run = find_parent_run(uri, self.id)
        if run is None:
            raise LookupError(f"no MLflow run is tagged {QUEUE_JOB}={self.id}")
        tables = TrackingServer(uri).text_artifacts(run.info.run_id, ".md")
        return {"run_id": run.info.run_id, "metrics": dict(run.data.metrics), "tables": tables}


def find_parent_run(tracking_uri: str | None, job_id: str):
    """The sweep run a queued job created (tagged with its queue id), in any experiment."""
    return TrackingServer(tracking_uri or resolve(None).uri).find_tagged(QUEUE_JOB, job_id)


def job_environment(job: QueuedJob) -> dict:
    """What a queued job receives: its config as JSON, its queue id, and the commit of the code
    (the uploaded copy has no .git; the data it needs travels with it)."""
    commit, dirty = git_state()
    return {
        CONFIG_VARIABLE: json.dumps(job.config),
        QUEUE_JOB_VARIABLE: job.id,
        GIT_COMMIT_VARIABLE: commit,
        GIT_DIRTY_VARIABLE: dirty,
    }


def submit_to_ray(client: Client, job: QueuedJob) -> str:
    """Start a queued job through Ray's job API; returns the submission id."""
    spec = lookup(job.job)
    submission_id = f"sweeps-{job.id}-{job.attempts + 1}"
    return ray_jobs(client.address).submit_job(
        entrypoint=spec.entrypoint(),
        runtime_env=project_runtime_env(job_environment(job)),
        submission_id=submission_id,
        metadata={"queue_id": job.id, "job": job.job},
    )


__all__ = ["ACTIVE", "Client", "ClusterUnreachable", "ConfigError", "JobHandle"]
