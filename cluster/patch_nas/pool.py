"""The gang pool: K worker gangs (`WorkerCluster`) kept in a `cluster.pools.Pool`, trainings queued
to idle gangs, a gang whose worker dies replaced and its training retried on another gang.

Gangs are made on first use (a re-submitted run whose work is all in MLflow starts none) and
stopped by `close()`. A gang fails when one of its actors dies (`RayActorError` and kin) or, with
G > 1, when a collective breaks because a peer died; the gang is then replaced (all its workers:
the survivors' process group is broken) and the training goes back to the front of the queue,
avoiding the gangs it failed on while another one exists, up to `max_attempts` tries. A gang
that cannot be placed again (its node is gone) is dropped and the pool goes on with the rest.
An exception inside the training is a bug, not a crash: it stops the job.

Not `run_graph`: a training here is G calls on G actors that succeed or fail together, and the
search feeds the pool from an ask/tell loop rather than a static graph.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

import ray

from cluster.patch_nas.config import FractureNASConfig
from cluster.patch_nas.jobs import TrainingJob
from cluster.patch_nas.workers import WORKER_DEATH, WorkerCluster, broken_collective, gang_count
from cluster.pools import Pool
from cluster.scheduler import TrackingTarget
from cluster.units import UnitResult
from core.progress import Progress


@dataclass
class Task:
    """A job waiting for or running on a gang, with its failed attempts."""

    job: TrainingJob
    attempts: int = 0
    failed_on: list[int] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.job.unit.key

    @property
    def name(self) -> str:
        return self.job.unit.name


class GangPool:
    """Runs trainings on up to K gangs; `wait()` returns finished ones (see the module docstring)."""

    def __init__(self, config: FractureNASConfig, data, target: TrackingTarget, fault: dict | None):
        self.config, self.data, self.target, self.fault = config, data, target, fault
        self._gangs: Pool[WorkerCluster] | None = None  # sized on first use (asks Ray what fits)
        self._data_ref = None
        self.idle: deque[int] = deque()
        self.queue: deque[Task] = deque()
        self.running: dict[int, tuple[Task, list, dict]] = {}  # gang -> (task, refs, rank -> result)
        self.owner: dict = {}  # pending ObjectRef -> (gang, rank)
        self.failures = 0
        self.lost: set[int] = set()  # gangs that could not be placed again

    @property
    def gangs(self) -> Pool[WorkerCluster]:
        if self._gangs is None:
            c = self.config
            n, use_gpu = gang_count(c)
            self._gangs = Pool(lambda i: WorkerCluster(i, c, use_gpu), n, stop=WorkerCluster.shutdown)
            self._data_ref = ray.put(self.data)
            self.idle.extend(range(n))
            print(
                f"{n} worker cluster(s) x {c.workers_per_cluster} {'GPU' if use_gpu else 'CPU'} "
                f"worker(s); {c.parallelism} candidates in flight",
                flush=True,
            )
        return self._gangs

    def submit(self, task: Task) -> None:
        self.queue.append(task)
        self._dispatch()

    def _dispatch(self) -> None:
        every = set(range(self.gangs.size)) - self.lost
        for task in list(self.queue):
            if not self.idle:
                return
            avoid = set(task.failed_on)
            allowed = [i for i in self.idle if i not in avoid]
            if not allowed and avoid >= every:
                allowed = list(self.idle)  # it failed everywhere: any gang
            if not allowed:
                continue  # wait for a gang it has not failed on
            index = allowed[0]
            self.idle.remove(index)
            self.queue.remove(task)
            task.attempts += 1
            refs = self.gangs.get(index).submit(task.job, self._data_ref, self.target, self.fault)
            self.running[index] = (task, refs, {})
            for rank, ref in enumerate(refs):
                self.owner[ref] = (index, rank)

    def _fail(self, index: int, err: Exception) -> None:
        task, refs, _done = self.running.pop(index)
        for ref in refs:
            self.owner.pop(ref, None)
        self.failures += 1
        task.failed_on.append(index)
        print(
            f"worker cluster {index} died while training {task.name} (attempt {task.attempts}: "
            f"{type(err).__name__}); restarting it and retrying the candidate elsewhere",
            flush=True,
        )
        if task.attempts >= self.config.max_attempts:
            raise RuntimeError(
                f"{task.name}: its workers died {task.attempts} times (max_attempts "
                f"{self.config.max_attempts}); last error: {err}"
            )
        try:
            self.gangs.replace(index)
            self.idle.append(index)
        except RuntimeError as placement:  # its resources are gone (a lost node): go on without it
            self.lost.add(index)
            print(f"warning: {placement}; continuing with {self.gangs.size - len(self.lost)} cluster(s)")
            if len(self.lost) == self.gangs.size:
                raise RuntimeError("every worker cluster is lost") from placement
        self.queue.appendleft(task)

    def wait(self) -> list[tuple[Task, UnitResult]]:
        """Block until at least one training has finished on every rank of its gang."""
        finished: list[tuple[Task, UnitResult]] = []
        while not finished:
            self._dispatch()
            if not self.owner:
                raise RuntimeError("nothing is running and nothing can be dispatched")
            ready, _ = ray.wait(list(self.owner), num_returns=1)
            for ref in ready:
                if ref not in self.owner:
                    continue  # its gang failed earlier in this round
                index, rank = self.owner.pop(ref)
                task, refs, done = self.running[index]
                try:
                    done[rank] = ray.get(ref)
                except WORKER_DEATH as err:
                    self._fail(index, err)
                    continue
                except ray.exceptions.RayTaskError as err:
                    if len(refs) > 1 and broken_collective(err):
                        self._fail(index, err)
                        continue
                    raise RuntimeError(f"{task.name} failed on worker cluster {index}: {err}") from None
                if len(done) == len(refs):
                    del self.running[index]
                    self.idle.append(index)
                    attempt = {"attempts": task.attempts, "failed_on": list(task.failed_on)}
                    finished.append((task, replace(done[0], info=done[0].info | attempt)))
        self._dispatch()
        return finished

    def run_all(self, tasks: list[Task], label: str) -> list[tuple[Task, UnitResult]]:
        """Run independent trainings to completion, with a progress line."""
        if not tasks:
            return []
        for task in tasks:
            self.submit(task)
        progress = Progress(len(tasks), label, unit="trainings", every=30.0)
        out = []
        while len(out) < len(tasks):
            for item in self.wait():
                out.append(item)
                progress.update()
        return out

    def close(self) -> None:
        """Stop every gang that was started."""
        if self._gangs is not None:
            self._gangs.close()
