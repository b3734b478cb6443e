"""The variants of a sweep on a pool of `BoneAgeTrainer` actors, through the scheduler.

`run_graph` alone decides which variants are finished in MLflow (their results are read back);
Ray, the actor pool and the shared data are set up when the first variant is launched, so a
re-submitted sweep whose variants are all finished starts neither Ray nor an actor.
"""

from __future__ import annotations

from cluster.boneage.config import BoneAgeJobConfig
from cluster.boneage.data import SweepData
from cluster.boneage.trainer import TABLES, BoneAgeTrainer, Recipe
from cluster.pools import ActorPool
from cluster.scheduler import Node, Outcome, TrackingTarget, fault_hook, run_graph
from cluster.units import Unit


class Launcher:
    """Every variant's `Node.launch` and `Node.pool`: calls go round robin to an `ActorPool` of
    trainers made on the first launch (one GPU each when the cluster has GPUs, else
    `cpus_per_trainer` CPUs; at most `max_trainers` and one per variant). A dead actor is
    restarted by Ray and its call retried (the unit resumes); when Ray gives up, the scheduler
    hands the call back (`failed`) and launches the unit again on a fresh member."""

    def __init__(self, config: BoneAgeJobConfig, data: SweepData, target: TrackingTarget, units: int):
        self.config, self.data, self.target, self.units = config, data, target, units
        self.recipe = Recipe(
            config.model, config.train, config.checkpoint_root(), config.checkpoint_to_mlflow
        )
        self.fault = fault_hook()
        self.pool: ActorPool | None = None
        self._data = None  # the data in Ray's object store, put once

    def __call__(self, unit: Unit, _deps):
        pool = self._start()
        return pool.call("run", unit, self.target, self.fault, self.recipe, self._data)

    def _start(self) -> ActorPool:
        if self.pool is None:
            import ray

            from cluster.devices import slots
            from cluster.runtime import init_ray

            init_ray(self.config.ray_address)
            fit = slots(gpus_per_actor=1.0, cpus_per_actor=self.config.cpus_per_trainer)
            size = min(fit.count, self.config.max_trainers or fit.count, self.units)
            restarts = self.config.max_restarts
            options = fit.options | {"max_restarts": restarts, "max_task_retries": restarts}
            self.pool = ActorPool(ray.remote(BoneAgeTrainer), size, options, (self.config.cpus_per_trainer,))
            self._data = ray.put(self.data)
            where = "1 GPU" if "num_gpus" in options else f"{options['num_cpus']} CPU(s)"
            print(f"up to {size} BoneAgeTrainer actor(s), {where} each")
        return self.pool

    def done(self, ref) -> None:
        self.pool.done(ref)

    def failed(self, ref) -> None:
        self.pool.failed(ref)

    def close(self) -> None:
        """Stop the actors (none were made when every variant was already finished)."""
        if self.pool is not None:
            self.pool.close()


def run_sweep(
    config: BoneAgeJobConfig, units: list[Unit], data: SweepData, target: TrackingTarget
) -> Outcome:
    """Every variant's `UnitResult`: trained now on the trainer pool, or read back from MLflow."""
    launch = Launcher(config, data, target, len(units))
    nodes = [Node(u, launch, tables=TABLES, pool=launch, max_relaunch=config.max_restarts) for u in units]
    try:
        return run_graph(nodes, target.tracker(), label="bone-age variants")
    finally:
        launch.close()
