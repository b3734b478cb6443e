"""Worker gangs: G `PatchFineTuner` actors in one placement group, training each job together.

A worker holds the device Ray assigned (cluster.devices: a GPU when it asked for one, else the
CPU). The G workers of a gang (`WorkerCluster`) are joined by `torch.distributed` (gloo on CPU,
NCCL on GPU) and train each job with data parallelism; G = 1 is the same code without a process
group. Each job is a unit run by `cluster.lifecycle.run_resumable`: rank 0 opens, logs and closes
its MLflow run, the other ranks train and evaluate untracked (`track=False`). Candidates are
short and every rank would have to restore the same state, so a unit restarts from scratch when
a worker dies (`checkpoint_every=None`): the gang pool retries it on another gang.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pyarrow as pa
import ray

from cluster.devices import assigned_device, cluster_gpus, placement
from cluster.lifecycle import Resumable, run_resumable
from cluster.patch_nas.config import FractureNASConfig
from cluster.patch_nas.jobs import TimmModel, TrainingJob
from cluster.scheduler import TrackingTarget, maybe_die
from cluster.units import UnitResult
from core.config import ConfigError

WORKER_DEATH = (
    ray.exceptions.RayActorError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.OwnerDiedError,
)


def broken_collective(err: Exception) -> bool:
    """A task error caused by a dead peer of the gang (gloo/NCCL connection lost)."""
    text = str(err)
    return any(
        s in text for s in ("DistBackendError", "Connection closed by peer", "Connection reset", "NCCL")
    )


@ray.remote(max_restarts=0, max_task_retries=0)
class PatchFineTuner:
    """One worker of a gang: rank `rank` of `world`; trains jobs with its peers. Supernets are
    built once per actor and kept; every candidate is cut out of them afresh."""

    def __init__(self, cluster: int, rank: int, world: int, threads: int = 1):
        import torch

        torch.set_num_threads(threads)
        self.cluster, self.rank, self.world = cluster, rank, world
        self.device = assigned_device()
        self._supernets: dict = {}
        self._gang: dict = {}  # every rank's node and GPU ids, params of rank 0's runs

    def placement(self) -> dict:
        """This worker's node id and GPU ids (cluster.devices.placement)."""
        return placement()

    def gang(self, ranks: list[dict]) -> None:
        """Where every rank of the gang runs (node ids, GPU ids per rank): params of a job's run, and
        tags of the attempt that finished it."""
        self._gang = {
            "gang_node_ids": ",".join(r.get("node_id", "?") for r in ranks),
            "gang_gpu_ids": ";".join(r.get("gpu_ids", "?") for r in ranks),
        }

    def address(self) -> tuple[str, int]:
        """This node's IP and a free port: the rendezvous of the gang's process group."""
        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def join(self, host: str, port: int, timeout_s: float) -> str:
        import torch.distributed as dist

        backend = "gloo" if self.device == "cpu" else "nccl"
        dist.init_process_group(
            backend,
            init_method=f"tcp://{host}:{port}",
            rank=self.rank,
            world_size=self.world,
            timeout=timedelta(seconds=timeout_s),
        )
        return backend

    def _model(self, job: TrainingJob):
        spec, recipe = job.model, job.recipe
        if isinstance(spec, TimmModel):
            from core.patches.baselines import build_baseline

            return build_baseline(spec.name, 2, spec.checkpoint, recipe.dropout, recipe.seed)
        from core.models.ofa_subnet import build_subnet, build_supernet
        from search.ofa_space import decode

        key = (spec.checkpoint, spec.seed)
        if key not in self._supernets:
            self._supernets[key] = build_supernet(spec.checkpoint, spec.seed, dropout=recipe.dropout)
        return build_subnet(self._supernets[key], decode(spec.genome), 2, recipe.dropout, recipe.seed)

    def run(self, job: TrainingJob, data, target: TrackingTarget, fault: dict | None) -> UnitResult | None:
        """Train and score one job; rank 0 returns its result (metrics only: the tables stay in its run)."""
        work = self._resumable(job, data, target, fault)
        result = run_resumable(job.unit, target, work, self.device, fault, track=self.rank == 0)
        if self.rank != 0:
            return None
        return replace(result, tables={}, info=result.info | {"cluster": self.cluster})

    def _resumable(self, job: TrainingJob, data, target: TrackingTarget, fault: dict | None) -> Resumable:
        from core.patches.finetune import PatchClassifierTrainer

        unit, epochs, start = job.unit, job.recipe.epochs, time.perf_counter()

        def on_epoch(epoch: int, record: dict) -> None:
            if self.rank == 0:
                print(
                    f"[cluster {self.cluster}] {unit.name} epoch {epoch}/{epochs} loss {record['loss']:.4f} "
                    f"({record['seconds']:.1f} s, {record['images_per_s']:.0f} patches/s)",
                    flush=True,
                )
                if epoch == 1:
                    maybe_die(unit, fault)  # testing hook: the worker dies mid-candidate

        def setup(device: str):
            nonlocal start
            start = time.perf_counter()
            return PatchClassifierTrainer(self._model(job), job.recipe, data, device, on_epoch)

        def finish(trainer, run_id: str):
            from core.patches.finetune import measure

            result = measure(trainer, job.splits)  # every rank: evaluation is sharded and gathered
            if self.rank != 0:
                return {}, {}
            target.tracker().set_tags(run_id, {"cluster": self.cluster} | self._gang)  # this attempt's gang
            seconds = time.perf_counter() - start
            return self._metrics(job, trainer.model, result, seconds), self._tables(result, data)

        params = job.log_params | {
            "role": job.role,
            "workers": self.world,
            "macs_reference_size": job.macs_reference,
        } | self._gang
        model = shipped_model(data) if job.role in SHIPPED_ROLES else None
        return Resumable(setup, finish, params, tags={"role": job.role}, checkpoint_every=None, model=model)

    def _metrics(self, job: TrainingJob, model, result, seconds: float) -> dict:
        from core.models.ofa_subnet import count_macs, count_parameters

        metrics = {f"aufroc_{s}": v for s, v in result.aufroc.items()}
        metrics |= {
            "params": count_parameters(model),
            "macs": count_macs(model, job.input_size),
            "train_seconds": result.train_seconds,
            "eval_seconds": result.eval_seconds,
            "seconds": seconds,
            "worker_seconds": seconds * self.world,
            "steps": result.steps,
            "diverged": float(result.diverged),
            "final_loss": result.history[-1]["loss"] if result.history else float("nan"),
        }
        if job.macs_reference:
            metrics["macs_reference"] = count_macs(model, job.macs_reference)
        return metrics

    @staticmethod
    def _tables(result, data) -> dict[str, pa.Table]:
        tables = {"history.parquet": pa.Table.from_pylist(result.history)}
        for split, scores in result.scores.items():
            f = data.split(split).frame
            tables[f"scores_{split}.parquet"] = pa.table(
                {
                    "study_id": f["study_id"].astype(str).to_numpy(),
                    "image_id": f["image_id"].astype(str).to_numpy(),
                    "test_label": f["test_label"].to_numpy(),
                    "detector_score": f["score"].to_numpy(),
                    "score": scores,
                }
            )
        return tables


SHIPPED_ROLES = ("final-nas",)  # the retrained top-k of the search (FractNet among them): logged as models


def shipped_model(data):
    """`Resumable.model` of a retrained network: the network that scored the splits (its EMA
    weights after their batch-norm recalibration) as `PatchScorer` (uint8 patches -> P(fracture)),
    with the first two validation patches as the input example. It is logged, not registered:
    the driver registers the top-k once FractNet is known (`Tracker.register_model`)."""

    def model(trainer) -> tuple:
        from core.patches.dataset import iterate_batches
        from core.patches.finetune import PatchScorer

        split = data.split("val")
        example = next(iterate_batches(split, [np.arange(min(2, len(split)))], data.input_size))
        return PatchScorer(trainer.eval_model), example

    return model


class WorkerCluster:
    """G PatchFineTuner actors in one placement group, joined by a process group when G > 1."""

    def __init__(self, index: int, config: FractureNASConfig, use_gpu: bool, ready_timeout_s: float = 600):
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self.index, self.world = index, config.workers_per_cluster
        bundle = {"CPU": config.cpus_per_worker} | ({"GPU": 1} if use_gpu else {})
        self.pg = placement_group([dict(bundle) for _ in range(self.world)], strategy=config.placement)
        try:
            ray.get(self.pg.ready(), timeout=ready_timeout_s)
        except ray.exceptions.GetTimeoutError:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(self.pg)
            raise RuntimeError(
                f"worker cluster {index}: {self.world} x {bundle} could not be placed "
                f"within {ready_timeout_s:.0f} s"
            ) from None
        self.actors = [
            PatchFineTuner.options(
                num_cpus=config.cpus_per_worker,
                num_gpus=1 if use_gpu else 0,
                scheduling_strategy=PlacementGroupSchedulingStrategy(self.pg, placement_group_bundle_index=r),
            ).remote(index, r, self.world, config.cpus_per_worker)
            for r in range(self.world)
        ]
        if self.world > 1:
            host, port = ray.get(self.actors[0].address.remote())
            ray.get([a.join.remote(host, port, config.collective_timeout_s) for a in self.actors])
        self.placements = ray.get([a.placement.remote() for a in self.actors])  # the nodes Ray chose
        ray.get(self.actors[0].gang.remote(self.placements))

    def submit(self, job: TrainingJob, data_ref, target: TrackingTarget, fault) -> list:
        """Every rank's call for one job (rank 0's returns the result)."""
        return [a.run.remote(job, data_ref, target, fault) for a in self.actors]

    def shutdown(self) -> None:
        from ray.util.placement_group import remove_placement_group

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        remove_placement_group(self.pg)


def gang_count(config: FractureNASConfig) -> tuple[int, bool]:
    """(gangs that fit the Ray cluster's resources, GPUs used?). Fewer than asked is a warning,
    none is an error. The search does not change: `parallelism` candidates stay in flight."""
    gpus, cpus = cluster_gpus(), float(ray.cluster_resources().get("CPU", 0.0))
    if config.device == "cuda" and gpus == 0:
        raise ConfigError("device: cuda, but the Ray cluster has no GPU")
    use_gpu = config.device == "cuda" or (config.device == "auto" and gpus > 0)
    g, c = config.workers_per_cluster, config.cpus_per_worker
    fit = int(cpus // (g * c))
    if use_gpu:
        fit = min(fit, int(gpus // g))
    if fit == 0:
        need = f"{g} GPU(s) and {g * c} CPU(s)" if use_gpu else f"{g * c} CPU(s)"
        raise ConfigError(
            f"one worker cluster needs {need}; the Ray cluster has {gpus:g} GPU(s) and {cpus:g} CPU(s) "
            "(lower workers_per_cluster or cpus_per_worker)"
        )
    if fit < config.clusters:
        print(
            f"warning: {config.clusters} clusters of {g} asked, {fit} fit in this Ray cluster; "
            f"running {fit} (the search is the same, only slower)",
            flush=True,
        )
    return min(fit, config.clusters), use_gpu
