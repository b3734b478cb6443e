"""The Ray actors of weight sharing: `SupernetTrainerActor` trains one supernet at a time through
the resumable-unit lifecycle; `ArchEvaluatorActor` loads trained supernets once and scores cells.

Both wrap plain classes of core.ws on the device Ray assigned (`cluster.devices`), and live in
`ActorPool`s sized by `trainer_slots` / `evaluator_slots` so that evaluators never take the
resources the trainers and the CPU searches still need.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import ray

from cluster.devices import Slots, assigned_device, placement, slots
from cluster.lifecycle import Resumable, run_resumable
from cluster.scheduler import TrackingTarget
from cluster.tracking import timed
from cluster.units import Unit, UnitResult
from core import checkpoint
from core.ws.cells import CellSampler
from core.ws.config import SupernetConfig
from core.ws.evaluate import CellScorer
from core.ws.trainer import SupernetTrainer, load_data

WEIGHTS = "supernet.pt"  # the trained supernet's weights, an artifact of its run
PROXIES = "proxy.parquet"  # an evaluation's cells: hash, a proxy per mode, target, features


def trainer_slots(gpus_per_trainer: float, gpus_per_evaluator: float, evaluators: int) -> Slots:
    """Trainers that fit beside the evaluator pool's GPUs (on a CPU cluster: one per CPU; the
    pool is closed once every supernet is trained, so evaluators and searches get the CPUs)."""
    return slots(gpus_per_trainer, 1, reserve_gpus=gpus_per_evaluator * evaluators)


def evaluator_slots(wanted: int, gpus_per_evaluator: float, gpus_per_trainer: float) -> Slots:
    """Evaluators that can live for the whole sweep and still leave room for a trainer (GPUs) or
    for the CPU searches (one CPU): evaluator actors hold their resources while they live."""
    fit = slots(gpus_per_evaluator, 1, reserve_gpus=gpus_per_trainer)
    spare = 0 if fit.options.get("num_gpus") else 1
    return Slots(max(1, min(wanted, fit.count - spare)), fit.options)


def supernet_work(unit: Unit, cfg: SupernetConfig, cells: pa.Table, target: TrackingTarget) -> Resumable:
    """A supernet as a resumable unit: one step per epoch, a checkpoint every `checkpoint_every`
    epochs; at the end its weights (`WEIGHTS`) and its loss curve are logged."""

    def finish(trainer: SupernetTrainer, run_id: str) -> tuple[dict, dict]:
        target.tracker().save_blob(run_id, WEIGHTS, checkpoint.to_bytes(trainer.model.state_dict()))
        history = trainer.history
        metrics = {
            "final_loss": history[-1]["loss"],
            "train_seconds": float(sum(h["seconds"] for h in history)),
            "images_per_s": float(np.mean([h["images_per_s"] for h in history])),
            "epochs": cfg.epochs,
        }
        return metrics, {"history.parquet": pa.Table.from_pylist(history)}

    return Resumable(
        setup=lambda device: SupernetTrainer(cfg, cells, load_data(cfg), device),
        finish=finish,
        params=unit.params | cfg.model_dump(),
        tags={"role": "supernet"},
        checkpoint_every=cfg.checkpoint_every,
    )


@ray.remote(max_restarts=2, max_task_retries=2)
class SupernetTrainerActor:
    """Trains supernets on its device; restarted after a crash, the retried call resumes from
    the last checkpoint of the unit's MLflow run."""

    def __init__(self, target: TrackingTarget):
        self.target = target
        self.device = assigned_device()

    def train(self, unit: Unit, config: dict, cells: pa.Table, fault: dict | None = None) -> UnitResult:
        cfg = SupernetConfig.model_validate(config)
        return run_resumable(
            unit, self.target, supernet_work(unit, cfg, cells, self.target), self.device, fault
        )


def load_supernet(tracker, run_id: str, cfg: SupernetConfig, device: str):
    """A trained supernet's weights from its run (torch.load(weights_only=True))."""
    from core.models.supernet import Supernet

    blob = tracker.load_blob(run_id, WEIGHTS)
    if blob is None:
        raise FileNotFoundError(f"run {run_id} has no {WEIGHTS}: the supernet did not finish")
    model = Supernet(cfg.space, cfg.macro, cfg.single_kernel, cfg.bn_momentum, cfg.bn_eps)
    model.load_state_dict(checkpoint.from_bytes(blob, device))
    return model


@ray.remote(max_restarts=2, max_task_retries=2)
class ArchEvaluatorActor:
    """Scores cells with trained supernets; each supernet is loaded once and kept (the pool sends
    every call about one supernet to the same evaluator)."""

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

    @timed  # the unit's run starts when the scoring does
    def evaluate(
        self,
        unit: Unit,
        supernet_run_id: str,
        config: dict,
        cells: pa.Table,
        rows: list[int],
        truth: np.ndarray,
        features: dict,
    ) -> UnitResult:
        """One correlation evaluation: score `rows` under the unit's modes and log the unit. It is
        logged here, not by a separate task, so that the call is the unit: a pool member that
        dies has its unit relaunched on a fresh one."""
        scores = self.score(supernet_run_id, config, cells, rows, unit.params["modes"].split(","))
        return log_evaluation(unit, self.target, scores, truth, features, supernet_run_id)

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


def _spearman(proxy: np.ndarray, target: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(proxy) == 0:
        return float("nan")
    return float(spearmanr(proxy, target).statistic)


def log_evaluation(
    unit: Unit,
    target: TrackingTarget,
    scores: pa.Table,
    truth: np.ndarray,
    features: dict,
    supernet_run_id: str,
) -> UnitResult:
    """Join proxies with the benchmark's accuracies and log the evaluation unit's child run."""
    table = scores.append_column("target", pa.array(truth))
    for name, values in features.items():
        table = table.append_column(name, pa.array(values))
    modes = unit.params["modes"].split(",")
    metrics = {f"spearman_{m.replace('-', '_')}": _spearman(table[m].to_numpy(), truth) for m in modes}
    metrics |= {f"mean_proxy_{m.replace('-', '_')}": float(np.mean(table[m].to_numpy())) for m in modes}
    metrics["seconds"] = float(scores.schema.metadata[b"seconds"])
    metrics["cells_per_s"] = len(truth) * len(modes) / max(metrics["seconds"], 1e-9)
    metrics = {k: v for k, v in metrics.items() if np.isfinite(v)}
    run_id = target.tracker().log_unit(
        target.parent_run_id,
        unit.key,
        unit.name,
        params=unit.params | {"supernet_run": supernet_run_id} | placement(),  # the evaluator's node and GPU
        metrics=metrics,
        tables={PROXIES: table},
        tags={"role": "evaluation"},
    )
    return UnitResult(unit.key, run_id, metrics, {PROXIES: table})
