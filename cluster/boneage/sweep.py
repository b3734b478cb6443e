"""The variants of a sweep on a pool of `BoneAgeTrainer` actors, through the scheduler.

`run_graph` alone decides which variants are finished in MLflow (their results are read back);
Ray, the actor pool and the shared data are set up when the first variant is launched, so a
re-submitted sweep whose variants are all finished starts neither Ray nor an actor.
"""

from __future__ import annotations

from cluster.boneage.config import BoneAgeJobConfig
from cluster.boneage.data import SweepData
from cluster.boneage.trainer import TABLES, Recipe, trainer_pool
from cluster.pools import ActorPool
from cluster.scheduler import Node, Outcome, TrackingTarget, fault_hook, run_graph
from cluster.units import Unit


class Launcher:
    """Every variant's `Node.launch` and `Node.pool`: calls go round robin to the trainer pool,
    made (with Ray) on the first launch. A dead actor is restarted by Ray and its call retried
    (the unit resumes); when Ray gives up, the scheduler hands the call back (`failed`) and
    launches the unit again on a fresh member."""

    def __init__(self, config: BoneAgeJobConfig, data: SweepData, target: TrackingTarget, units: int):
        self.config, self.data, self.target, self.units = config, data, target, units
        self.recipe = Recipe(
            config.model,
            config.train,
            config.checkpoint_root(),
            config.checkpoint_to_mlflow,
            config.register_model,
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

            from cluster.runtime import init_ray

            init_ray(self.config.ray_address)
            self.pool = trainer_pool(self.config, self.units)
            self._data = ray.put(self.data)
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
