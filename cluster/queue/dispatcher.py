"""The dispatcher: starts PENDING jobs through Ray while at most N run, and keeps the queue in
step with Ray (a job Ray lost after a head restart is re-queued; resumable sweeps continue
where they stopped)."""

from __future__ import annotations

import logging
import time

from cluster.queue.client import Client, ClusterUnreachable, find_parent_run, ray_jobs, submit_to_ray
from cluster.tracking import TrackingServer

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, client: Client):
        self.client = client
        self.queue = client.queue

    def _ray_status(self, jobs_api, submission_id: str) -> str | None:
        """Ray's status of a submission, or None when Ray does not know it (lost)."""
        try:
            return str(jobs_api.get_job_status(submission_id).value)
        except RuntimeError as err:  # "Job ... does not exist" after a head restart
            if "does not exist" in str(err) or "404" in str(err):
                return None
            raise

    def reconcile(self, jobs_api) -> dict:
        counts = {"finished": 0, "requeued": 0}
        for job in self.queue.list("RUNNING"):
            status = self._ray_status(jobs_api, job.submission_id)
            if status is None:
                moved = self.queue.transition(
                    job.id,
                    ("RUNNING",),
                    "PENDING",
                    attempts=job.attempts + 1,
                    message="lost by Ray (head restarted?): re-queued",
                )
                counts["requeued"] += moved
            elif status == "SUCCEEDED":
                counts["finished"] += self.queue.transition(job.id, ("RUNNING",), "SUCCEEDED", message=None)
            elif status == "FAILED":
                info = jobs_api.get_job_info(job.submission_id)
                counts["finished"] += self.queue.transition(
                    job.id, ("RUNNING",), "FAILED", message=(info.message or "")[-2000:]
                )
            elif status == "STOPPED":
                if self.queue.transition(job.id, ("RUNNING",), "CANCELLED", message="stopped in Ray"):
                    mark_killed(self.client.tracking_uri or job.config.get("tracking_uri"), job.id)
                    counts["finished"] += 1
            elif job.cancel_requested:  # still running in Ray: ask it to stop
                jobs_api.stop_job(job.submission_id)
        return counts

    def start_pending(self) -> int:
        started = 0
        while len(self.queue.list("RUNNING")) < self.client.max_running:
            job = self.queue.next_pending()
            if job is None:
                break
            submission_id = submit_to_ray(self.client, job)
            if self.queue.transition(job.id, ("PENDING",), "RUNNING", submission_id=submission_id):
                started += 1
        return started

    def step(self) -> dict:
        """Reconcile, then start; raises ClusterUnreachable when Ray cannot be reached."""
        jobs_api = ray_jobs(self.client.address)
        counts = self.reconcile(jobs_api)
        counts["started"] = self.start_pending()
        return counts

    def run(self, poll: float = 2.0, stop=None) -> None:
        """Dispatch until `stop()` is true; an unreachable cluster is reported and retried."""
        while not (stop and stop()):
            try:
                counts = self.step()
                if counts["started"] or counts["finished"] or counts["requeued"]:
                    print(
                        f"dispatcher: {counts}; running {len(self.queue.list('RUNNING'))}, "
                        f"pending {len(self.queue.list('PENDING'))}",
                        flush=True,
                    )
            except ClusterUnreachable as err:
                print(f"dispatcher: {err}; retrying in {poll:.0f} s", flush=True)
            time.sleep(poll)


def mark_killed(tracking_uri: str | None, job_id: str) -> int:
    """Mark a cancelled job's parent run and its unfinished child runs KILLED in MLflow."""
    parent = find_parent_run(tracking_uri, job_id)
    return TrackingServer(tracking_uri).kill(parent) if parent is not None else 0
