"""Ray actors of weight sharing: SupernetTrainer (owns a device, trains one supernet, checkpoints
to MLflow) and ArchEvaluator (loads trained supernets once, scores batches of cells).

Both wrap the plain classes of core.ws: the actor pins them to what Ray assigned (a GPU when
`num_gpus` > 0, else the CPU), stores and reloads checkpoints, and logs to MLflow as child
runs of the sweep under their stable keys.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pyarrow as pa
import ray
import torch

from cluster.scheduler import TrackingTarget, Unit, maybe_die
from core.ws.cells import CellSampler
from core.ws.config import SupernetConfig
from core.ws.evaluate import CellScorer
from core.ws.trainer import SupernetTrainer, load_data

CHECKPOINT = "checkpoints/last.pt"
WEIGHTS = "supernet.pt"


def assigned_device() -> str:
    """'cuda' when Ray gave this worker a GPU (CUDA_VISIBLE_DEVICES is then set for it), else 'cpu'."""
    return "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"


def resources(num_gpus: float) -> dict:
    """Actor options: a GPU (or a fraction) when the cluster has GPUs, one CPU otherwise."""
    gpus = num_gpus if ray.cluster_resources().get("GPU", 0) > 0 else 0
    return {"num_gpus": gpus, "num_cpus": 1}


def evaluator_pool_size(wanted: int, gpus_per_evaluator: float, gpus_per_trainer: float) -> int:
    """How many evaluators can live for the whole sweep and still leave room for a trainer.

    Evaluator actors hold their resources while they live; a pool that took every GPU (or every
    CPU) would leave the supernets still to train waiting forever.
    """
    res = ray.cluster_resources()
    if res.get("GPU", 0) > 0 and gpus_per_evaluator > 0:
        room = int((res["GPU"] - gpus_per_trainer) // gpus_per_evaluator)
    else:
        room = int(res.get("CPU", 1)) - 1
    return max(1, min(wanted, room))


@ray.remote(max_restarts=2, max_task_retries=2)
class SupernetTrainerActor:
    """Trains one supernet; resumes from the last checkpoint of its MLflow run after a restart."""

    def __init__(self, target: TrackingTarget):
        self.target = target
        self.device = assigned_device()

    def train(self, unit: Unit, config: dict, cells: pa.Table, fault: dict | None = None) -> dict:
        cfg = SupernetConfig.model_validate(config)
        tracker = self.target.tracker()
        run_id = tracker.open_unit(
            self.target.parent_run_id,
            unit.key,
            unit.name,
            params=unit.params | cfg.model_dump(),
            tags={"role": "supernet"},
        )
        trainer = SupernetTrainer(cfg, cells, load_data(cfg), self.device)
        blob = tracker.load_blob(run_id, CHECKPOINT)
        resumed_from = 0
        if blob is not None:
            trainer.restore_bytes(blob)
            resumed_from = trainer.epoch

        def on_epoch(t: SupernetTrainer, record: dict) -> None:
            if t.epoch % cfg.checkpoint_every == 0 or t.epoch == cfg.epochs:
                tracker.save_blob(run_id, CHECKPOINT, t.checkpoint_bytes())
            maybe_die(unit, fault)  # testing hook: kill the worker once, after a checkpoint

        start = time.perf_counter()
        history = trainer.train(on_epoch)
        buffer = io.BytesIO()
        torch.save(trainer.model.state_dict(), buffer)
        tracker.save_blob(run_id, WEIGHTS, buffer.getvalue())
        metrics = {
            "final_loss": history[-1]["loss"],
            "train_seconds": float(sum(h["seconds"] for h in history)),
            "images_per_s": float(np.mean([h["images_per_s"] for h in history])),
            "epochs": cfg.epochs,
            "resumed_from_epoch": resumed_from,
            "wall_seconds_this_attempt": time.perf_counter() - start,
        }
        tracker.close_unit(run_id, metrics, tables={"history.parquet": pa.Table.from_pylist(history)})
        return {"key": unit.key, "run_id": run_id, "metrics": metrics, "device": self.device}


def load_supernet(tracker, run_id: str, cfg: SupernetConfig, device: str):
    """A trained supernet's weights from its run (torch.load(weights_only=True))."""
    from core.models.supernet import Supernet

    blob = tracker.load_blob(run_id, WEIGHTS)
    if blob is None:
        raise FileNotFoundError(f"run {run_id} has no {WEIGHTS}: the supernet did not finish")
    model = Supernet(cfg.space, cfg.macro, cfg.single_kernel, cfg.bn_momentum, cfg.bn_eps)
    model.load_state_dict(torch.load(io.BytesIO(blob), map_location=device, weights_only=True))
    return model


@ray.remote(max_restarts=2, max_task_retries=2)
class ArchEvaluatorActor:
    """Scores cells with trained supernets; each supernet is loaded once and kept."""

    def __init__(self, target: TrackingTarget):
        self.target = target
        self.device = assigned_device()
        self.scorers: dict[str, CellScorer] = {}
        self.cache: dict[tuple, dict] = {}  # (supernet run, mode) -> hash -> (proxy, seconds)

    def _scorer(self, run_id: str, cfg: SupernetConfig, bn_seed: int) -> CellScorer:
        if run_id not in self.scorers:
            model = load_supernet(self.target.tracker(), run_id, cfg, self.device)
            self.scorers[run_id] = CellScorer(model, load_data(cfg), seed=bn_seed, device=self.device)
        return self.scorers[run_id]

    def score(
        self,
        supernet_run_id: str,
        config: dict,
        cells: pa.Table,
        rows: list[int],
        modes: list[str],
        bn_seed: int = 0,
    ) -> pa.Table:
        """Proxy accuracies of `rows` of `cells` under each mode, as an Arrow table."""
        cfg = SupernetConfig.model_validate(config)
        scorer = self._scorer(supernet_run_id, cfg, bn_seed)
        sampler = CellSampler(cells, seed=0)
        specs = [sampler.spec(r) for r in rows]
        columns = {"hash": [s.hash for s in specs]}
        start = time.perf_counter()
        for mode in modes:
            columns[mode] = scorer.score(specs, mode)
        seconds = time.perf_counter() - start
        table = pa.table(columns)
        return table.replace_schema_metadata({"seconds": f"{seconds:.3f}", "device": self.device})

    def score_specs(self, supernet_run_id: str, config: dict, specs: list, mode: str = "BNS-FT") -> tuple:
        """Proxies of cells for a search, with the seconds they cost; cells scored before (by
        this or another search of the same supernet) come from the cache at their first cost."""
        cfg = SupernetConfig.model_validate(config)
        cache = self.cache.setdefault((supernet_run_id, mode), {})
        todo = [s for s in specs if s.hash not in cache]
        if todo:
            scorer = self._scorer(supernet_run_id, cfg, 0)
            start = time.perf_counter()
            values = scorer.score(todo, mode)
            each = (time.perf_counter() - start) / len(todo)
            for spec, value in zip(todo, values):
                cache[spec.hash] = (float(value), each)
        hits = [cache[s.hash] for s in specs]
        return np.array([h[0] for h in hits]), float(sum(h[1] for h in hits))
