"""Chapter 5 on Ray: a (1+1)-ES proposes OFA sub-networks, K worker clusters fine-tune them, AUFROC decides.

Pieces, from the bottom up:

- `FractureNASConfig` (+ `PRESETS` smoke / default / thesis): the job as validated data.
- `PatchFineTuner`: a Ray actor owning one GPU (or CPU slot). G of them, placed by one placement
  group, form a worker cluster (`WorkerCluster`) joined by `torch.distributed` (gloo on CPU,
  NCCL on GPU); each candidate is trained by all G with data parallelism (G = 1 on a CPU box:
  the same code without a process group). Rank 0 logs the candidate as a child MLflow run.
- `ClusterPool`: K clusters; queued trainings go to idle clusters; when a worker dies mid-
  candidate (`RayActorError`, or a collective broken by a dead peer) the cluster is rebuilt and
  the candidate is retried on *another* cluster (when there is one), up to `max_attempts`.
- `SearchDriver`: the ask/tell loop. The ES keeps `parallelism` candidates in flight; results
  are told in ask order by default, so candidate j is always asked right after tell j - P and a
  run is reproducible whatever the timing. Every candidate is a unit with a stable key (its
  canonical genome, the recipe, the data and supernet identities): a key already FINISHED in
  MLflow, or proposed twice, is not trained again. After every tell the optimiser state (JSON
  data, see search.es) and the per-evaluation records are saved in the parent run, so a killed
  driver, resubmitted, continues the same search with the same candidates.
- `FractureNAS.run`: the search, then the final stage (the 3 best distinct networks, the OFA
  reference and the timm baselines retrained for `final.epochs` and scored on test; optionally
  the OFA and FractNet from scratch), table 5.1 and figs. 5.1 / 5.2 on the parent run.

This drives Ray actors from an ask/tell loop instead of `cluster.scheduler.run_graph` (whose
units are a static graph), with the same conventions: `Unit` keys, `Tracker.log_unit` child
runs written in one go at the end, `maybe_die` fault injection (a unit name for workers,
`driver/tell-<n>` for the driver itself).
"""

from __future__ import annotations

import json
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import ray
from pydantic import Field, field_validator, model_validator

from cluster.scheduler import TrackingTarget, Unit, fault_hook, maybe_die
from cluster.tracking import SWEEP_KEY, Tracker
from core.config import Config, ConfigError, flatten, load_config
from core.keys import stable_key
from core.patches.config import FinetuneRecipe, PatchDataConfig
from core.progress import Progress
from search.es import CheckpointError, ESConfig, OnePlusOneES, Proposal
from search.ofa_space import OFA_REFERENCE, canonical, decode, describe, genome_key

UNIT_VERSION = 1  # bump when a unit's result would change for the same config
CHECKPOINT = "es/checkpoint.json"
CHECKPOINT_NOTE = (
    "es/checkpoint.json is plain JSON (optimiser settings, the ordered ask/tell log, per-evaluation "
    "records); it is restored by replaying the log into a fresh nevergrad optimiser, never unpickled"
)


# ------------------------------------------------------------------------------------ config


class SupernetConfig(Config):
    checkpoint: str | None = Field(
        None, description="local OFA ImageNet checkpoint (ofa_mbv3_d234_e346_k357_w1.2); None: seeded random"
    )
    seed: int = Field(0, description="seed of the random supernet (fallback and from-scratch rows)")

    @field_validator("checkpoint")
    @classmethod
    def _exists(cls, path):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"OFA supernet checkpoint not found: {path}")
        return path


class FinalStageConfig(Config):
    """Retraining after the search (thesis 5.4, table 5.1)."""

    enabled: bool = True
    top_k: int = Field(3, ge=1, description="best distinct networks of the search to retrain")
    epochs: int = Field(20, ge=1)
    reference: bool = Field(True, description="also retrain the best OFA ImageNet net")
    baselines: list[str] = Field(
        default_factory=lambda: ["resnet152", "densenet161", "efficientnet_b0", "efficientnet_b1"],
        description="timm networks",
    )
    baseline_weights: dict[str, str] = Field(
        default_factory=dict, description="timm name -> local ImageNet checkpoint (.safetensors/.pth)"
    )
    scratch: bool = Field(False, description="also train OFA and FractNet from random init (the • rows)")
    macs_input_size: int | None = Field(
        224, ge=16, description="also count multiply-adds at this input size (224: the thesis' figures)"
    )

    @field_validator("baselines")
    @classmethod
    def _known(cls, names):
        from core.patches.baselines import check_name

        for name in names:
            check_name(name)
        if len(set(names)) != len(names):
            raise ValueError("a baseline is listed twice")
        return names

    @model_validator(mode="after")
    def _weights(self):
        for name, path in self.baseline_weights.items():
            if name not in self.baselines:
                raise ValueError(f"baseline_weights: {name!r} is not in baselines {self.baselines}")
            if not Path(path).is_file():
                raise ValueError(f"baseline_weights.{name}: checkpoint not found: {path}")
        return self


class FractureNASConfig(Config):
    experiment: str = "fracture-nas"
    sweep_name: str = "fracture-nas"
    preset: Literal["smoke", "default", "thesis", "custom"] = "custom"
    data: PatchDataConfig = Field(default_factory=PatchDataConfig)
    supernet: SupernetConfig = Field(default_factory=SupernetConfig)
    recipe: FinetuneRecipe = Field(default_factory=FinetuneRecipe)
    search: ESConfig = Field(default_factory=ESConfig)
    final: FinalStageConfig = Field(default_factory=FinalStageConfig)
    clusters: int = Field(10, ge=1, description="worker clusters training candidates at once (K)")
    workers_per_cluster: int = Field(
        4, ge=1, description="GPUs (CPU processes without GPUs) of a cluster (G)"
    )
    cpus_per_worker: int = Field(1, ge=1, description="CPUs (and torch threads) of each worker")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: GPUs when the Ray cluster has some"
    )
    placement: Literal["PACK", "STRICT_PACK", "SPREAD"] = Field(
        "PACK", description="placement of a cluster's workers"
    )
    max_attempts: int = Field(3, ge=1, description="tries of a candidate whose workers die, across clusters")
    collective_timeout_s: float = Field(
        1800.0, gt=0, description="torch.distributed timeout inside a cluster"
    )
    tracking_uri: str | None = None
    ray_address: str | None = None
    output_dir: str = "outputs/fracture_nas"

    @property
    def parallelism(self) -> int:
        """Candidates in flight (the optimiser's num_workers): search.parallelism, else K."""
        return self.search.parallelism or self.clusters


PRESETS: dict[str, dict] = {
    "smoke": {
        "data": {"input_size": 32, "synthetic": {"studies": 48}},
        "recipe": {"epochs": 1, "batch_size": 32, "eval_batch_size": 128},
        "search": {"budget": 4},
        "clusters": 2,
        "workers_per_cluster": 1,
        "final": {"epochs": 1, "baselines": ["efficientnet_b0"]},
    },
    "default": {
        "data": {"input_size": 32},
        "recipe": {"epochs": 3, "batch_size": 32},
        "search": {"budget": 12},
        "clusters": 2,
        "workers_per_cluster": 1,
        "final": {"epochs": 6},
    },
    "thesis": {"final": {"scratch": True}},
}
PRESET_NOTES = {
    "smoke": "smoke preset: 48 synthetic studies, 32x32 inputs, 4 evaluations of 1 epoch (batch 32), "
    "2 clusters x 1 worker, final stage 1 epoch with EfficientNet-b0 only; for tests",
    "default": "default preset: embedded synthetic patches at 32x32, 12 evaluations of 3 epochs (batch 32), "
    "2 clusters x 1 worker, final stage 6 epochs, the four timm baselines (thesis scale: --preset thesis)",
    "thesis": "thesis preset: 236x236 inputs, 100 evaluations of 5 epochs (SGD 0.02 cosine, batch 128, "
    "EMA 0.99), 10 clusters x 4 GPUs, final stage 20 epochs, baselines and from-scratch rows",
    "custom": "custom config (no preset)",
}


def resolve_config(preset: str, path: str | None = None, overrides: dict | None = None) -> FractureNASConfig:
    """Defaults (the thesis) < preset < file < overrides (dotted keys); validated."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    base = json.loads(json.dumps(PRESETS[preset])) | {"preset": preset}
    return load_config(FractureNASConfig, path, overrides, base=base, label=f"preset {preset}")


# ------------------------------------------------------------------------------------ data


@dataclass
class PreparedData:
    patches: object  # core.patches.manifest.PatchSet
    data: object  # core.patches.dataset.PatchData
    note: str
    embedded: bool


def prepare_data(config: FractureNASConfig, verbose: bool = True) -> PreparedData:
    """Load and check the manifest (generating the embedded set first); raises PatchDataError
    naming the file/column/row before anything starts."""
    from core.patches.dataset import prepare
    from core.patches.manifest import load_manifest
    from core.patches.synthetic import SOURCE, ensure_synthetic

    d = config.data
    embedded = d.embedded
    manifest = ensure_synthetic(d.synthetic, verbose=verbose) if embedded else Path(d.manifest)
    patches = load_manifest(
        manifest,
        None if embedded else d.images,
        d.columns,
        d.min_score,
        d.positive_iou,
        d.negative_iou,
        d.check_files,
    )
    splits = ("train", "val", "test") if config.final.enabled else ("train", "val")
    patches.check_usable(splits)
    note = f"{SOURCE}; {manifest}" if embedded else f"patch manifest {manifest}"
    data = prepare(patches, d.input_size, d.in_memory, verbose=verbose)
    return PreparedData(patches, data, note, embedded)


# ------------------------------------------------------------------------------------ units


def _recipe_identity(recipe: FinetuneRecipe, epochs: int | None = None) -> dict:
    """The parts of the recipe that decide a result (not batch sizes of evaluation, loaders)."""
    out = recipe.model_dump(exclude={"eval_batch_size", "loader_workers"})
    if epochs is not None:
        out["epochs"] = epochs
    return out


def supernet_id(config: FractureNASConfig, scratch: bool = False) -> str:
    from core.models.ofa_subnet import supernet_identity

    if scratch:
        return f"scratch:seed{config.supernet.seed}"
    return supernet_identity(config.supernet.checkpoint, config.supernet.seed)


def candidate_identity(config: FractureNASConfig, data_identity: str, supernet: str) -> dict:
    return {
        "recipe": _recipe_identity(config.recipe),
        "input_size": config.data.input_size,
        "data": data_identity,
        "supernet": supernet,
    }


def ofa_job(
    genome,
    name: str,
    config: FractureNASConfig,
    data_identity: str,
    supernet: str,
    epochs: int,
    splits: tuple[str, ...],
    role: str,
    scratch: bool = False,
) -> dict:
    """A training job for an OFA sub-network (a search candidate or a final-stage row)."""
    g = canonical(genome)
    params = {
        "kind": "ofa-patch-classifier",
        "version": UNIT_VERSION,
        "genome": list(g),
        "splits": list(splits),
        **candidate_identity(config, data_identity, supernet),
    }
    params["recipe"] = _recipe_identity(config.recipe, epochs)
    unit = Unit(stable_key(params), name, params)
    weights = {"checkpoint": None if scratch else config.supernet.checkpoint, "seed": config.supernet.seed}
    return {
        "unit": unit,
        "model": {"kind": "ofa", "genome": list(g), "supernet": weights},
        "recipe": config.recipe.model_dump() | {"epochs": epochs},
        "splits": list(splits),
        "input_size": config.data.input_size,
        "macs_reference": config.final.macs_input_size,
        "log_params": {
            "arch": describe(g),
            "genome": ",".join(map(str, g)),
            "arch_key": genome_key(g),
            "role": role,
            "supernet": supernet,
            "data": data_identity,
            "input_size": config.data.input_size,
            **{f"recipe.{k}": v for k, v in params["recipe"].items()},
            **{k: json.dumps(v) for k, v in decode(g).items()},
        },
    }


def baseline_job(name: str, config: FractureNASConfig, data_identity: str) -> dict:
    from core.models.ofa_subnet import _file_sha256
    from core.patches.baselines import label

    checkpoint = config.final.baseline_weights.get(name)
    weights = f"sha256:{_file_sha256(Path(checkpoint))}" if checkpoint else "random-init"
    params = {
        "kind": "timm-patch-classifier",
        "version": UNIT_VERSION,
        "model": name,
        "weights": weights,
        "splits": ["val", "test"],
        "recipe": _recipe_identity(config.recipe, config.final.epochs),
        "input_size": config.data.input_size,
        "data": data_identity,
    }
    return {
        "unit": Unit(stable_key(params), f"final/{name}", params),
        "model": {"kind": "timm", "name": name, "checkpoint": checkpoint},
        "recipe": config.recipe.model_dump() | {"epochs": config.final.epochs},
        "splits": ["val", "test"],
        "input_size": config.data.input_size,
        "macs_reference": config.final.macs_input_size,
        "log_params": {
            "network": label(name),
            "role": "baseline",
            "weights": weights,
            "data": data_identity,
            "input_size": config.data.input_size,
            **{f"recipe.{k}": v for k, v in params["recipe"].items()},
        },
    }


# ------------------------------------------------------------------------------------ workers


def _device() -> str:
    import torch

    return "cuda:0" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"


@ray.remote(max_restarts=0, max_task_retries=0)
class PatchFineTuner:
    """One worker of a cluster: rank `rank` of `world`; trains candidates with its peers.

    The device is what Ray assigned (a GPU when the actor holds one, else the CPU). Supernets
    are built once per actor and kept; every candidate is cut out of them afresh."""

    def __init__(self, cluster: int, rank: int, world: int, threads: int = 1):
        import torch

        torch.set_num_threads(threads)
        self.cluster, self.rank, self.world = cluster, rank, world
        self.device = _device()
        if self.device != "cpu":
            torch.cuda.set_device(0)  # Ray made the assigned GPU the only visible one
        self._supernets: dict = {}

    def address(self) -> tuple[str, int]:
        """This node's IP and a free port: the rendezvous of the cluster's process group."""
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

    def _model(self, spec: dict, recipe):
        if spec["kind"] == "timm":
            from core.patches.baselines import build_baseline

            return build_baseline(spec["name"], 2, spec["checkpoint"], recipe.dropout, recipe.seed)
        from core.models.ofa_subnet import build_subnet, build_supernet

        weights = spec["supernet"]
        key = (weights["checkpoint"], weights["seed"])
        if key not in self._supernets:
            self._supernets[key] = build_supernet(
                weights["checkpoint"], weights["seed"], dropout=recipe.dropout
            )
        return build_subnet(self._supernets[key], decode(spec["genome"]), 2, recipe.dropout, recipe.seed)

    def run(self, job: dict, data, target: TrackingTarget, fault: dict | None) -> dict | None:
        """Train and score one job; rank 0 logs it as a child run and returns its summary."""
        from core.models.ofa_subnet import count_macs, count_parameters
        from core.patches.config import FinetuneRecipe
        from core.patches.finetune import finetune

        unit: Unit = job["unit"]
        recipe = FinetuneRecipe.model_validate(job["recipe"])
        start = time.perf_counter()
        model = self._model(job["model"], recipe)

        def on_epoch(epoch: int, record: dict) -> None:
            if self.rank == 0:
                print(
                    f"[cluster {self.cluster}] {unit.name} epoch {epoch}/{recipe.epochs} "
                    f"loss {record['loss']:.4f} "
                    f"({record['seconds']:.1f} s, {record['images_per_s']:.0f} patches/s)",
                    flush=True,
                )
                if epoch == 1:
                    maybe_die(unit, fault)  # testing hook: the worker dies mid-candidate

        result = finetune(model, recipe, data, tuple(job["splits"]), self.device, on_epoch)
        if self.rank != 0:
            return None
        counted = model
        params = count_parameters(counted)
        macs = count_macs(counted, job["input_size"])
        metrics = {f"aufroc_{s}": v for s, v in result.aufroc.items()}
        metrics |= {
            "params": params,
            "macs": macs,
            "train_seconds": result.train_seconds,
            "eval_seconds": result.eval_seconds,
            "seconds": time.perf_counter() - start,
            "worker_seconds": (time.perf_counter() - start) * self.world,
            "steps": result.steps,
            "diverged": float(result.diverged),
            "final_loss": result.history[-1]["loss"] if result.history else float("nan"),
        }
        if job.get("macs_reference"):
            metrics["macs_reference"] = count_macs(counted, job["macs_reference"])
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
        log_params = job["log_params"] | {
            "cluster": self.cluster,
            "workers": self.world,
            "device": self.device,
            "macs_reference_size": job.get("macs_reference"),
        }
        run_id = target.tracker().log_unit(
            target.parent_run_id,
            unit.key,
            unit.name,
            params=log_params,
            metrics=metrics,
            tables=tables,
            tags={"role": job["log_params"].get("role", ""), "cluster": str(self.cluster)},
        )
        return {"key": unit.key, "run_id": run_id, "metrics": metrics, "cluster": self.cluster}


WORKER_DEATH = (
    ray.exceptions.RayActorError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.OwnerDiedError,
)


def _broken_collective(err: Exception) -> bool:
    """A task error caused by a dead peer of the cluster (gloo/NCCL connection lost)."""
    text = str(err)
    return any(
        s in text for s in ("DistBackendError", "Connection closed by peer", "Connection reset", "NCCL")
    )


class WorkerCluster:
    """G PatchFineTuner actors in one placement group, joined by a process group when G > 1."""

    def __init__(self, index: int, config: FractureNASConfig, use_gpu: bool, ready_timeout_s: float = 600):
        from ray.util.placement_group import placement_group

        self.index, self.config, self.use_gpu = index, config, use_gpu
        self.world = config.workers_per_cluster
        bundle = {"CPU": config.cpus_per_worker} | ({"GPU": 1} if use_gpu else {})
        self.pg = placement_group([dict(bundle) for _ in range(self.world)], strategy=config.placement)
        self.ready_timeout_s = ready_timeout_s
        self.actors: list = []
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        try:
            ray.get(self.pg.ready(), timeout=self.ready_timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise RuntimeError(
                f"worker cluster {self.index}: {self.world} x {self.pg.bundle_specs[0]} could not be placed "
                f"within {self.ready_timeout_s:.0f} s"
            ) from None
        self.actors = [
            PatchFineTuner.options(
                num_cpus=self.config.cpus_per_worker,
                num_gpus=1 if self.use_gpu else 0,
                scheduling_strategy=PlacementGroupSchedulingStrategy(self.pg, placement_group_bundle_index=r),
            ).remote(self.index, r, self.world, self.config.cpus_per_worker)
            for r in range(self.world)
        ]
        if self.world > 1:
            host, port = ray.get(self.actors[0].address.remote())
            ray.get([a.join.remote(host, port, self.config.collective_timeout_s) for a in self.actors])

    def submit(self, job: dict, data_ref, target: TrackingTarget, fault) -> list:
        return [a.run.remote(job, data_ref, target, fault) for a in self.actors]

    def restart(self) -> None:
        """Kill every worker (the survivors' process group is broken) and start fresh ones."""
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.restarts += 1
        self._start()

    def shutdown(self) -> None:
        from ray.util.placement_group import remove_placement_group

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        remove_placement_group(self.pg)


@dataclass
class Task:
    """A job waiting for or running on a cluster, with its failed attempts."""

    job: dict
    tag: object = None
    attempts: int = 0
    failed_on: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.job["unit"].name


def cluster_count(config: FractureNASConfig) -> tuple[int, bool]:
    """(clusters that fit the Ray cluster's resources, GPUs used?). Fewer than asked is a warning,
    none is an error. The search does not change: `parallelism` candidates stay in flight."""
    res = ray.cluster_resources()
    gpus, cpus = res.get("GPU", 0.0), res.get("CPU", 0.0)
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


class ClusterPool:
    """K worker clusters; `wait()` returns finished jobs, handling dead workers by retrying elsewhere."""

    def __init__(self, config: FractureNASConfig, data_ref, target: TrackingTarget, fault: dict | None):
        self.config, self.data_ref, self.target, self.fault = config, data_ref, target, fault
        n, use_gpu = cluster_count(config)
        self.clusters = [WorkerCluster(i, config, use_gpu) for i in range(n)]
        self.use_gpu = use_gpu
        self.idle: deque[WorkerCluster] = deque(self.clusters)
        self.queue: deque[Task] = deque()
        self.running: dict[int, tuple[Task, list, dict]] = {}  # cluster -> (task, refs, done rank -> value)
        self.owner: dict = {}  # pending ObjectRef -> (cluster, rank)
        self.failures = 0
        self.lost: set[int] = set()  # clusters that could not be restarted

    @property
    def busy(self) -> bool:
        return bool(self.queue or self.running)

    def submit(self, task: Task, front: bool = False) -> None:
        (self.queue.appendleft if front else self.queue.append)(task)
        self._dispatch()

    def _dispatch(self) -> None:
        every = {c.index for c in self.clusters} - self.lost
        for task in list(self.queue):
            if not self.idle:
                return
            avoid = set(task.failed_on)
            allowed = [c for c in self.idle if c.index not in avoid]
            if not allowed and avoid >= every:
                allowed = list(self.idle)  # it failed everywhere: any cluster
            if not allowed:
                continue  # wait for a cluster it has not failed on
            cluster = allowed[0]
            self.idle.remove(cluster)
            self.queue.remove(task)
            task.attempts += 1
            refs = cluster.submit(task.job, self.data_ref, self.target, self.fault)
            self.running[cluster.index] = (task, refs, {})
            for rank, ref in enumerate(refs):
                self.owner[ref] = (cluster.index, rank)

    def _fail(self, index: int, err: Exception) -> None:
        task, refs, _done = self.running.pop(index)
        for ref in refs:
            self.owner.pop(ref, None)
        cluster = self.clusters[index]
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
            cluster.restart()
            self.idle.append(cluster)
        except RuntimeError as restart_error:  # its resources are gone (a lost node): go on without it
            self.lost.add(index)
            print(
                f"warning: {restart_error}; continuing with {len(self.clusters) - len(self.lost)} cluster(s)"
            )
            if len(self.lost) == len(self.clusters):
                raise RuntimeError("every worker cluster is lost") from restart_error
        self.queue.appendleft(task)

    def wait(self) -> list[tuple[Task, dict]]:
        """Block until at least one job has finished on every rank of its cluster."""
        finished: list[tuple[Task, dict]] = []
        while not finished:
            self._dispatch()
            if not self.owner:
                raise RuntimeError("nothing is running and nothing can be dispatched")
            ready, _ = ray.wait(list(self.owner), num_returns=1)
            for ref in ready:
                if ref not in self.owner:
                    continue  # its cluster failed earlier in this round
                index, rank = self.owner.pop(ref)
                task, refs, done = self.running[index]
                try:
                    done[rank] = ray.get(ref)
                except WORKER_DEATH as err:
                    self._fail(index, err)
                    continue
                except ray.exceptions.RayTaskError as err:
                    if len(refs) > 1 and _broken_collective(err):
                        self._fail(index, err)
                        continue
                    raise RuntimeError(f"{task.name} failed on worker cluster {index}: {err}") from None
                if len(done) == len(refs):
                    del self.running[index]
                    self.idle.append(self.clusters[index])
                    finished.append(
                        (task, done[0] | {"attempts": task.attempts, "failed_on": list(task.failed_on)})
                    )
        self._dispatch()
        return finished

    def run_all(self, tasks: list[Task], label: str) -> list[tuple[Task, dict]]:
        """Run independent jobs to completion, with a progress line."""
        for task in tasks:
            self.submit(task)
        progress = Progress(len(tasks), label, unit="trainings", every=30.0) if tasks else None
        out = []
        while len(out) < len(tasks):
            for item in self.wait():
                out.append(item)
                progress.update()
        return out

    def shutdown(self) -> None:
        for cluster in self.clusters:
            cluster.shutdown()


class LazyPool:
    """A ClusterPool created on first use: a resubmitted run whose work is all in MLflow starts no
    worker."""

    def __init__(self, make):
        self._make, self._pool = make, None

    def _get(self) -> ClusterPool:
        if self._pool is None:
            self._pool = self._make()
        return self._pool

    def submit(self, task: Task, front: bool = False) -> None:
        self._get().submit(task, front)

    def wait(self) -> list[tuple[Task, dict]]:
        return self._get().wait()

    def run_all(self, tasks: list[Task], label: str) -> list[tuple[Task, dict]]:
        return self._get().run_all(tasks, label) if tasks else []

    @property
    def failures(self) -> int:
        return self._pool.failures if self._pool is not None else 0

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


# ------------------------------------------------------------------------------------ search


def read_result(tracker: Tracker, run_id: str) -> dict:
    """The summary of a unit finished in an earlier run (its logged metrics)."""
    run = tracker.client.get_run(run_id)
    return {"key": run.data.tags.get("sweeps.unit_key"), "run_id": run_id, "metrics": dict(run.data.metrics)}


class SearchDriver:
    """The ask/tell loop over a ClusterPool (see the module docstring for the protocol)."""

    def __init__(
        self,
        es: OnePlusOneES,
        records: list[dict],
        pool: ClusterPool | LazyPool,
        make_job,
        tracker: Tracker,
        finished: dict[str, str],
        save,
        fault: dict | None,
        parallelism: int,
        tell_order: str = "ask",
    ):
        self.es, self.records, self.pool, self.make_job = es, records, pool, make_job
        self.tracker, self.finished, self.save, self.fault = tracker, finished, save, fault
        self.parallelism, self.tell_order = parallelism, tell_order
        self.results: dict[str, dict] = {}  # key -> result (this run or read back from MLflow)
        self.waiting: dict[str, list[int]] = {}  # key in training -> indices waiting for it
        self.ready: dict[int, dict] = {}  # index -> result, not yet told
        self.progress: Progress | None = None

    def _record(self, index: int) -> dict:
        while len(self.records) <= index:
            self.records.append({})
        return self.records[index]

    def _launch(self, proposal: Proposal) -> None:
        job = self.make_job(proposal)
        key = job["unit"].key
        rec = self._record(proposal.index)
        rec.update(
            index=proposal.index,
            key=key,
            genome=list(proposal.genome),
            arch=describe(proposal.genome),
            mutation_probability=proposal.mutation_probability,
        )
        if key not in self.results and key in self.finished:
            self.results[key] = read_result(self.tracker, self.finished[key]) | {"reused": True}
        if key in self.results:
            self.ready[proposal.index] = self.results[key] | {"cached": True}
        elif key in self.waiting:
            self.waiting[key].append(proposal.index)
        else:
            self.waiting[key] = [proposal.index]
            self.pool.submit(Task(job, tag=key))

    def _fill(self) -> None:
        while self.es.asked < self.es.budget and len(self.es.pending) < self.parallelism:
            self._launch(self.es.ask())

    def _complete(self, task: Task, result: dict) -> None:
        key = task.tag
        self.results[key] = result
        for n, index in enumerate(self.waiting.pop(key)):
            self.ready[index] = result | {"cached": n > 0}

    def _tell(self, index: int) -> None:
        result = self.ready.pop(index)
        m = result["metrics"]
        score = float(m["aufroc_val"])
        self.es.tell(index, score)
        rec = self._record(index)
        trained_here = not result.get("cached", False)
        rec.update(
            aufroc_val=score,
            params=m.get("params"),
            macs=m.get("macs"),
            macs_reference=m.get("macs_reference"),
            seconds=m.get("seconds") if trained_here else 0.0,
            worker_seconds=m.get("worker_seconds") if trained_here else 0.0,
            cached=not trained_here,
            cluster=result.get("cluster") if trained_here else None,
            attempts=result.get("attempts", 0) if trained_here else 0,
            failed_on=list(result.get("failed_on", [])) if trained_here else [],
            run_id=result["run_id"],
        )
        best = self.es.best()
        how = f"cluster {rec['cluster']}, {rec['seconds']:.0f} s" if trained_here else "cached"
        if rec["failed_on"]:
            how += f", retried after cluster(s) {rec['failed_on']} died"
        print(
            f"eval {index:3d}/{self.es.budget}: AUFROC {score:.4f} (best {best[1]:.4f} at {best[0].index}) "
            f"{rec['params'] / 1e6:.2f}M params  {rec['arch']}  [{how}]",
            flush=True,
        )

    def _tell_ready(self) -> None:
        while self.ready and not self.es.finished:
            if self.tell_order == "ask":
                index = self.es.pending[0].index
                if index not in self.ready:
                    return
            else:
                index = next(iter(self.ready))
            self._tell(index)
            self._fill()
            self.save(self.es, self.records)
            if self.progress:
                self.progress.update()
            maybe_die(Unit("", f"driver/tell-{self.es.told}"), self.fault)  # testing hook

    def run(self) -> None:
        es = self.es
        left = es.budget - es.told
        if left == 0:
            return
        self.progress = Progress(left, "search", unit="evaluations", every=30.0)
        for proposal in es.pending:  # asked before an interruption, not told: run them again
            self._launch(proposal)
        self._fill()
        self.save(es, self.records)
        while not es.finished:
            self._tell_ready()
            if es.finished:
                break
            for task, result in self.pool.wait():
                self._complete(task, result)


# ------------------------------------------------------------------------------------ the job


def sweep_key(config: FractureNASConfig, data_identity: str, supernet: str) -> str:
    """Identity of the search: its settings, parallelism and everything a candidate's score depends on."""
    return stable_key(
        {
            "kind": "fracture-nas-search",
            "version": UNIT_VERSION,
            "search": config.search.model_dump(exclude={"parallelism"}) | {"parallelism": config.parallelism},
            "candidate": candidate_identity(config, data_identity, supernet),
        }
    )


def load_checkpoint(
    tracker: Tracker, parent: str, config: FractureNASConfig
) -> tuple[OnePlusOneES, list[dict]]:
    """The search saved in the parent run, or a new one started from the config."""
    blob = tracker.load_blob(parent, CHECKPOINT)
    if blob is None:
        return OnePlusOneES.from_config(config.search, config.parallelism), []
    try:
        state = json.loads(blob)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"run {parent}: {CHECKPOINT} is not JSON ({err})") from None
    es = OnePlusOneES.from_state(state.get("es"))
    expected = (config.search.budget, config.parallelism, config.search.seed, config.search.mutation)
    found = (es.budget, es.num_workers, es.seed, es.mutation)
    if found != expected or es.start != config.search.start_genome():
        raise CheckpointError(
            f"run {parent}: the checkpoint's search settings {found} differ from the config's {expected}"
        )
    records = state.get("records", [])
    if not isinstance(records, list):
        raise CheckpointError(f"run {parent}: checkpoint records must be a list")
    return es, records


class FractureNAS:
    """The whole job for one config: search, final stage, report."""

    def __init__(self, config: FractureNASConfig, prepared: PreparedData, tracker: Tracker, uri: str):
        self.config, self.prepared, self.tracker, self.uri = config, prepared, tracker, uri
        self.data_identity = prepared.data.identity
        self.supernet = supernet_id(config)
        self.key = sweep_key(config, self.data_identity, self.supernet)

    def search_job(self, proposal: Proposal) -> dict:
        return ofa_job(
            proposal.genome,
            f"candidate-{proposal.index:03d}",
            self.config,
            self.data_identity,
            self.supernet,
            self.config.recipe.epochs,
            ("val",),
            "search",
        )

    def existing_parent(self) -> str | None:
        runs = self.tracker.client.search_runs(
            [self.tracker.experiment_id], f"tags.`{SWEEP_KEY}` = '{self.key}'", max_results=1
        )
        return runs[0].info.run_id if runs else None

    def dry_run(self) -> str:
        c = self.config
        finished = self.tracker.finished_units()
        parent = self.existing_parent()
        told = 0
        if parent:
            es, _records = load_checkpoint(self.tracker, parent, c)
            told = es.told
        lines = [
            f"search: (1+1)-ES {c.search.mutation}, budget {c.search.budget}, "
            f"{c.parallelism} candidates in flight, "
            f"start {OFA_REFERENCE.name if c.search.start == 'ofa-reference' else 'custom genome'}",
            f"workers: {c.clusters} clusters x {c.workers_per_cluster} workers x {c.cpus_per_worker} CPU(s), "
            f"device {c.device}",
            f"sweep key {self.key}: "
            + (
                f"parent run {parent}, {told}/{c.search.budget} evaluations told"
                if parent
                else "not started yet"
            ),
            f"finished units in experiment {c.experiment!r}: {len(finished)} (reused when a key comes up)",
        ]
        if c.final.enabled:
            lines.append(
                f"final stage: top {c.final.top_k} + "
                + ("OFA reference + " if c.final.reference else "")
                + f"{len(c.final.baselines)} baselines, {c.final.epochs} epochs"
                + (", plus the from-scratch rows" if c.final.scratch else "")
            )
        return "\n".join(lines)

    def run(self, start: float) -> dict:
        c = self.config
        fault = fault_hook()
        flat = flatten(c.model_dump())
        parent = self.tracker.start_sweep(
            c.sweep_name,
            self.key,
            flat | {"parallelism": c.parallelism},
            tags={
                "data": self.prepared.note[:5000],
                "embedded": str(self.prepared.embedded).lower(),
                "supernet": self.supernet,
                "preset": c.preset,
                "recipe": PRESET_NOTES[c.preset],
                "checkpoint_note": CHECKPOINT_NOTE,
            },
        )
        target = TrackingTarget(self.uri, c.experiment, parent)
        try:
            es, records = load_checkpoint(self.tracker, parent, c)
            if es.told:
                print(
                    f"resuming the search from run {parent}: {es.told}/{es.budget} evaluations already told"
                )

            def save(es_: OnePlusOneES, records_: list[dict]) -> None:
                blob = json.dumps({"es": es_.state(), "records": records_}, default=_json_default)
                self.tracker.save_blob(parent, CHECKPOINT, blob.encode())

            pool = LazyPool(lambda: self._pool(target, fault))
            try:
                finished = self.tracker.finished_units()
                driver = SearchDriver(
                    es,
                    records,
                    pool,
                    self.search_job,
                    self.tracker,
                    finished,
                    save,
                    fault,
                    c.parallelism,
                    c.search.tell_order,
                )
                driver.run()
                final = self.final_stage(pool, records, finished) if c.final.enabled else []
            finally:
                pool.shutdown()
            summary = self.report(parent, records, final, es, start, pool)
        except BaseException:
            self.tracker.finish_sweep(parent, {}, status="FAILED")
            raise
        return summary | {"parent_run_id": parent}

    def _pool(self, target: TrackingTarget, fault: dict | None) -> ClusterPool:
        c = self.config
        pool = ClusterPool(c, ray.put(self.prepared.data), target, fault)
        print(
            f"{len(pool.clusters)} worker cluster(s) x {c.workers_per_cluster} "
            f"{'GPU' if pool.use_gpu else 'CPU'} worker(s); {c.parallelism} candidates in flight",
            flush=True,
        )
        return pool

    # ---- final stage ---------------------------------------------------------------------
    def final_stage(self, pool: LazyPool, records: list[dict], finished: dict[str, str]) -> list[dict]:
        from core.patches.baselines import label
        from core.patches.report import top_networks, trajectory_frame

        c = self.config
        trajectory = trajectory_frame(records)
        top = top_networks(trajectory, c.final.top_k)
        rows: list[dict] = []  # table rows: network label, job
        for rank, r in enumerate(top.itertuples(), 1):
            genome = [int(v) for v in r.genome.split(",")]
            job = ofa_job(
                genome,
                f"final/top{rank}",
                c,
                self.data_identity,
                self.supernet,
                c.final.epochs,
                ("val", "test"),
                "final-nas",
            )
            rows.append({"network": f"NAS #{rank}", "job": job, "kind": "nas", "search_index": int(r.index)})
        if c.final.reference:
            job = ofa_job(
                OFA_REFERENCE.genome,
                "final/ofa-reference",
                c,
                self.data_identity,
                self.supernet,
                c.final.epochs,
                ("val", "test"),
                "final-reference",
            )
            rows.append({"network": "OFA", "job": job, "kind": "reference"})
        for name in c.final.baselines:
            rows.append(
                {"network": label(name), "job": baseline_job(name, c, self.data_identity), "kind": "baseline"}
            )
        results = self._run_jobs(pool, [r["job"] for r in rows], finished, "final stage")
        for row in rows:
            row["result"] = results[row["job"]["unit"].key]
        nas = [r for r in rows if r["kind"] == "nas"]
        best = max(
            nas, key=lambda r: (r["result"]["metrics"]["aufroc_val"], -int(r["network"].split("#")[1]))
        )
        best["network"] = "FractNet"
        if c.final.scratch:
            scratch_id = supernet_id(c, scratch=True)
            extra = []
            for src, name in (
                (next((r for r in rows if r["kind"] == "reference"), None), "OFA •"),
                (best, "FractNet •"),
            ):
                if src is None:
                    continue
                genome = src["job"]["model"]["genome"]
                job = ofa_job(
                    genome,
                    f"final/scratch-{'ofa' if name.startswith('OFA') else 'fractnet'}",
                    c,
                    self.data_identity,
                    scratch_id,
                    c.final.epochs,
                    ("val", "test"),
                    "final-scratch",
                    scratch=True,
                )
                extra.append({"network": name, "job": job, "kind": "scratch"})
            results = self._run_jobs(pool, [r["job"] for r in extra], finished, "final stage (from scratch)")
            for row in extra:
                row["result"] = results[row["job"]["unit"].key]
            rows += extra
        return rows

    def _run_jobs(self, pool: LazyPool, jobs: list[dict], finished: dict[str, str], label: str) -> dict:
        results, todo, seen = {}, [], set()
        for job in jobs:
            key = job["unit"].key
            if key in seen:
                continue  # the reference may also be one of the best: trained once
            seen.add(key)
            if key in finished:
                results[key] = read_result(self.tracker, finished[key])
            else:
                todo.append(Task(job, tag=key))
        print(
            f"{label}: {len(seen)} trainings, {len(seen) - len(todo)} already finished in MLflow", flush=True
        )
        for task, result in pool.run_all(todo, label):
            results[task.tag] = result
        return results

    # ---- report --------------------------------------------------------------------------
    def report(self, parent: str, records: list[dict], final: list[dict], es, start: float, pool) -> dict:
        from core.patches.report import (
            figures,
            table_markdown,
            trajectory_frame,
            trajectory_summary,
            write_table,
        )

        c = self.config
        out = Path(c.output_dir)
        trajectory = trajectory_frame(records)
        files = write_table(trajectory, out, "trajectory") + figures(trajectory, out)
        summary = trajectory_summary(trajectory)
        summary["evaluations_told"] = es.told
        summary["worker_hours"] = float(sum(r.get("worker_seconds") or 0.0 for r in records)) / 3600
        markdown = ""
        if final:
            order = {"baseline": 0, "reference": 1, "nas": 2, "scratch": 3}
            rows = []
            for row in sorted(final, key=lambda r: (order[r["kind"]], r["network"] != "FractNet")):
                m = row["result"]["metrics"]
                p = row["job"]["log_params"]
                rows.append(
                    {
                        "network": row["network"],
                        "aufroc_test": m.get("aufroc_test"),
                        "aufroc_val": m.get("aufroc_val"),
                        "params": m.get("params"),
                        "macs": m.get("macs"),
                        "macs_reference": m.get("macs_reference"),
                        "weights": self._weights_note(row),
                        "arch": p.get("arch", p.get("network", "")),
                        "run_id": row["result"]["run_id"],
                    }
                )
                summary_name = row["network"].replace(" ", "_").replace("•", "scratch").replace("#", "")
                summary[f"final_{summary_name}_aufroc_test"] = m.get("aufroc_test")
            table = pd.DataFrame(rows)
            note = (
                f"Test AUFROC (0.02-0.5 FP/image, study-wise), trainable parameters with a 2-class head, "
                f"multiply-adds of one image at {c.data.input_size}x{c.data.input_size}"
                + (
                    f" and {c.final.macs_input_size}x{c.final.macs_input_size}"
                    if c.final.macs_input_size
                    else ""
                )
                + f"; {c.final.epochs} epochs each. NAS #k: the k-th best network of the search; FractNet: "
                "the one of them with the best validation AUFROC after retraining. "
                f"Data: {self.prepared.note}."
            )
            markdown = table_markdown(table, c.data.input_size, c.final.macs_input_size, note)
            files += write_table(table, out, "table5_1", markdown)
            print(markdown)
        metrics = {k: v for k, v in summary.items() if isinstance(v, int | float) and np.isfinite(v)}
        metrics["wall_seconds"] = time.perf_counter() - start
        metrics["cluster_failures"] = pool.failures
        self.tracker.finish_sweep(parent, metrics, files)
        return summary | {"files": [str(f) for f in files], "markdown": markdown}

    def _weights_note(self, row: dict) -> str:
        model = row["job"]["model"]
        if row["kind"] == "scratch":
            return "none (from scratch)"
        if model["kind"] == "timm":
            return "ImageNet (local file)" if model["checkpoint"] else "random init (no local weights)"
        if self.config.supernet.checkpoint:
            return "OFA ImageNet supernet"
        return f"random-init supernet (seed {self.config.supernet.seed}; no OFA checkpoint)"


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
