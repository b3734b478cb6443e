"""The fracture-detection sweep on Ray (thesis chapter 2): train, choose operating points, evaluate.

`FractureDetectionConfig` is the job's validated config (the detector recipe plus data, seeds,
operating-point targets and evaluation settings). `plan()` makes two units per seed with stable
keys: a training unit (it checkpoints into its MLflow run and resumes from there after a crash
or a re-submission; at the end it chooses the DOUBT / FRACTURE operating points on the
development set and stores them in the exported model) and an evaluation unit that scores the
test set; changing only evaluation settings re-runs only the evaluation. Both run on
`DetectionTrainer` actors (`TrainerPool`), each owning a GPU when the cluster has some.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from mlflow.entities import Metric
from pydantic import Field, field_validator, model_validator

from cluster.scheduler import Node, TrackingTarget, Unit, maybe_die
from core.detection.config import DetectorConfig
from core.keys import stable_key
from core.metrics.detection import CH5_FP_RANGE, IOU_THRESHOLD

UNIT_VERSION = 1  # bump when a unit's results would change for the same config
CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
SPLITS = ("train", "dev", "test")


class FractureDetectionConfig(DetectorConfig):
    """Detector recipe + data + sweep. `preset` None: cpu-small on the embedded set, thesis else."""

    preset: Literal["thesis", "cpu-small"] | None = None
    experiment: str = "fracture-detection"
    sweep_name: str = "fracture-detection"
    # data: one COCO file split by study, or one file per split; neither: the embedded set
    coco: str | None = None
    train_json: str | None = None
    dev_json: str | None = None
    test_json: str | None = None
    image_root: str | None = None
    categories: list[str] | None = None
    split_fractions: list[float] = Field([0.7, 0.1, 0.2], description="train, dev, test (thesis 2.3.1)")
    split_seed: int = 0
    synthetic_studies: int = Field(300, ge=12)
    synthetic_image_size: int = Field(128, ge=32)
    synthetic_seed: int = 0
    # sweep and evaluation
    seeds: list[int] = [0]
    doubt_sensitivity: float = Field(0.962, gt=0, le=1)
    fracture_specificity: float = Field(0.992, gt=0, le=1)
    operating_point_level: Literal["patient", "image"] = "patient"
    iou_threshold: float = Field(IOU_THRESHOLD, gt=0, lt=1)
    froc_fp_range: tuple[float, float] = CH5_FP_RANGE
    froc_fp_per: Literal["patient", "image"] = "patient"
    eval_batch_size: int = Field(4, ge=1)
    cpus_per_trainer: int = Field(1, ge=1)
    gpus_per_trainer: float | None = Field(None, ge=0, description="None: 1 when the cluster has GPUs")
    tracking_uri: str | None = None
    ray_address: str | None = None
    output_dir: str = "outputs/fracture_detection"
    max_retries: int = Field(2, ge=0)

    @field_validator("coco", "train_json", "dev_json", "test_json")
    @classmethod
    def _exists(cls, value):
        if value is not None and not Path(value).is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @field_validator("image_root")
    @classmethod
    def _folder(cls, value):
        if value is not None and not Path(value).is_dir():
            raise ValueError(f"folder not found: {value}")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value):
        if not value or len(set(value)) != len(value):
            raise ValueError("seeds: one or more distinct seeds")
        return value

    @model_validator(mode="after")
    def _data(self):
        files = [self.train_json, self.dev_json, self.test_json]
        if self.coco and any(files):
            raise ValueError(
                "coco: give either one COCO file (split by study) or train_json/dev_json/test_json"
            )
        if any(files) and not all(files):
            raise ValueError("train_json, dev_json, test_json: give all three (or coco, or none)")
        if len(self.split_fractions) != 3 or any(f < 0 for f in self.split_fractions):
            raise ValueError("split_fractions: three fractions >= 0 (train, dev, test)")
        if min(self.split_fractions[1:]) <= 0 and not any(files):
            raise ValueError("split_fractions: the dev and test fractions must be positive")
        lo, hi = self.froc_fp_range
        if not 0 <= lo < hi:
            raise ValueError(f"froc_fp_range: need 0 <= low < high, got {self.froc_fp_range}")
        return self

    @property
    def embedded(self) -> bool:
        return not (self.coco or self.train_json)

    def with_preset(self) -> FractureDetectionConfig:
        """The preset made explicit: cpu-small on the embedded set, thesis on real data."""
        if self.preset is not None:
            return self
        return self.model_copy(update={"preset": "cpu-small" if self.embedded else "thesis"})


# --------------------------------------------------------------------------- data


def load_splits(config: FractureDetectionConfig) -> dict:
    """train / dev / test datasets of the config (checked: files, boxes, study ids, images)."""
    from core.detection.coco import load_coco
    from core.detection.synthetic import SyntheticSpec, synthetic_dataset

    if config.train_json:
        return {
            name: load_coco(getattr(config, f"{name}_json"), config.image_root, config.categories)
            for name in SPLITS
        }
    if config.coco:
        data = load_coco(config.coco, config.image_root, config.categories)
    else:
        data = synthetic_dataset(
            SyntheticSpec(config.synthetic_studies, config.synthetic_image_size, seed=config.synthetic_seed)
        )
    splits = data.split(dict(zip(SPLITS, config.split_fractions)), seed=config.split_seed)
    for name in ("dev", "test"):
        s = splits[name].summary()
        if s["studies_with_fracture"] == 0 or s["studies_with_fracture"] == s["studies"]:
            raise ValueError(
                f"the {name} split ({splits[name].describe()}) needs studies with and without fractures; "
                "use more data or larger split_fractions"
            )
    return splits


def data_identity(splits: dict) -> dict:
    return {name: splits[name].identity for name in SPLITS}


# --------------------------------------------------------------------------- units


def plan(config: FractureDetectionConfig, identity: dict) -> list[tuple[Unit, Unit]]:
    """(training unit, evaluation unit) per seed; keys cover everything deciding their results."""
    units = []
    for seed in config.seeds:
        recipe = config.model_copy(update={"seed": seed}).detector_only().resolved().model_dump(mode="json")
        train = {
            "kind": "fracture-detection-train",
            "version": UNIT_VERSION,
            "data": {"train": identity["train"], "dev": identity["dev"]},
            "recipe": recipe,
            "operating_points": {
                "doubt_sensitivity": config.doubt_sensitivity,
                "fracture_specificity": config.fracture_specificity,
                "level": config.operating_point_level,
                "iou_threshold": config.iou_threshold,
            },
        }
        train_key = stable_key(train)
        evaluation = {
            "kind": "fracture-detection-eval",
            "version": UNIT_VERSION,
            "train_unit": train_key,
            "test": identity["test"],
            "iou_threshold": config.iou_threshold,
            "froc_fp_range": list(config.froc_fp_range),
            "froc_fp_per": config.froc_fp_per,
        }
        units.append(
            (
                Unit(train_key, f"train/seed{seed}", {"seed": seed, **train}),
                Unit(stable_key(evaluation), f"eval/seed{seed}", {"seed": seed, **evaluation}),
            )
        )
    return units


def _flat_params(unit: Unit) -> dict:
    out = {}
    for key, value in unit.params.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _device() -> str:
    import ray

    return "cuda" if ray.is_initialized() and ray.get_gpu_ids() else "cpu"


def train_and_calibrate(
    config: FractureDetectionConfig,
    splits: dict,
    unit: Unit,
    target: TrackingTarget,
    fault: dict | None,
    device: str,
) -> dict:
    """The training unit, resumable: reopen its MLflow run, restore the last checkpoint, train on,
    checkpoint every `checkpoint_every` iterations, then choose the operating points on dev and
    store the exported model (weights + operating points) in the run."""
    import torch

    from core.detection.backends import make_trainer
    from core.detection.evaluate import predict_dataset
    from core.detection.operating_points import choose_operating_points
    from core.metrics.detection import match_boxes

    c = config.model_copy(update={"seed": unit.params["seed"]})
    tracker = target.tracker()
    run_id = tracker.open_unit(
        target.parent_run_id, unit.key, unit.name, _flat_params(unit), {"stage": "train"}
    )
    splits = load_splits(c)
    trainer = make_trainer(c.detector_only(), splits["train"], device)
    blob = tracker.load_blob(run_id, CHECKPOINT)
    if blob is not None:
        trainer.restore_bytes(blob)
        print(f"{unit.name}: resumed from its checkpoint at iteration {trainer.iteration}", flush=True)
    else:
        tracker.client.set_tag(run_id, "weights", trainer.detector.init_note)
        tracker.client.set_tag(run_id, "device", device)
        tracker.client.set_tag(run_id, "data", splits["train"].source)
    resumed_from = trainer.iteration
    print(
        f"{unit.name}: {trainer.detector.init_note}; device {device}; preset {trainer.config.preset}",
        flush=True,
    )
    every = trainer.config.checkpoint_every

    def on_step(tr, record):
        if tr.iteration % every == 0 or tr.iteration == tr.config.iterations:
            tracker.save_blob(run_id, CHECKPOINT, tr.checkpoint_bytes())
            recent = tr.history[-every:]
            now = int(time.time() * 1000)
            metrics = [Metric("train_loss", float(np.mean([r["loss"] for r in recent])), now, tr.iteration)]
            metrics.append(Metric("lr", record["lr"], now, tr.iteration))
            tracker.client.log_batch(run_id, metrics=metrics)
            maybe_die(unit, fault)  # testing hook: the worker dies once, right after a checkpoint

    trainer.train(on_step=on_step)
    dev = splits["dev"]
    dev_detections = predict_dataset(trainer.detector, dev, c.eval_batch_size)
    matching = match_boxes(dev.ground_truth(), dev_detections, c.iou_threshold)
    points = choose_operating_points(
        matching, c.doubt_sensitivity, c.fracture_specificity, c.operating_point_level
    )
    trainer.detector.operating_points = points
    print(f"{unit.name}: operating points on dev: {points.describe()}", flush=True)
    tracker.save_blob(run_id, MODEL, trainer.detector.export_bytes())
    tracker.save_blob(run_id, "operating_points.json", json.dumps(points.to_dict(), indent=2).encode())
    history = pa.Table.from_pylist(trainer.history)
    metrics = {
        "iterations": trainer.iteration,
        "resumed_from_iteration": resumed_from,
        "final_train_loss": float(np.mean([r["loss"] for r in trainer.history[-every:]])),
        "train_seconds": float(sum(r["seconds"] for r in trainer.history)),
        "dev_roc_auc": matching.roc_auc(),
        "doubt_threshold": points.doubt.threshold,
        "fracture_threshold": points.fracture.threshold,
        "dev_doubt_sensitivity": points.doubt.sensitivity,
        "dev_fracture_specificity": points.fracture.specificity,
    }
    tracker.close_unit(
        run_id, metrics, {"train_history.parquet": history, "dev_detections.parquet": dev_detections}
    )
    del trainer
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"key": unit.key, "run_id": run_id, "operating_points": points.to_dict(), "metrics": metrics}


def evaluate_model(
    config: FractureDetectionConfig,
    test,
    unit: Unit,
    target: TrackingTarget,
    fault: dict | None,
    deps: dict,
    device: str,
) -> dict:
    """The evaluation unit: score the test set with the exported model of its training unit (its
    operating points included) and log a child run with the metrics, detections and curves."""
    from core.detection.backends import load_detector
    from core.detection.evaluate import evaluate, predict_dataset

    maybe_die(unit, fault)
    tracker = target.tracker()
    trained = deps[unit.params["train_unit"]]
    detector = load_detector(tracker.load_blob(trained["run_id"], MODEL), device)
    detections = predict_dataset(detector, test, config.eval_batch_size)
    result = evaluate(
        test.ground_truth(),
        detections,
        detector.operating_points,
        config.iou_threshold,
        config.froc_fp_range,
        config.froc_fp_per,
    )
    curves = result.curves.to_arrow()
    run_id = tracker.log_unit(
        target.parent_run_id,
        unit.key,
        unit.name,
        params=_flat_params(unit) | {"test_data": test.source},
        metrics=result.metrics,
        tables={
            "test_detections.parquet": detections,
            "curves.parquet": curves,
            "per_study.parquet": result.per_study,
        },
        tags={"stage": "eval", "train_run": trained["run_id"]},
    )
    return {"key": unit.key, "run_id": run_id, "metrics": result.metrics, "curves": curves}


class DetectionTrainer:
    """Ray actor owning one device (a GPU when the cluster has them, else `cpus_per_trainer` CPUs):
    trains units and evaluates them, one at a time, keeping the data loaded between units.

    Restarted by Ray if its process dies (max_restarts); the interrupted call is retried and a
    training resumes from the last checkpoint stored in its unit's MLflow run."""

    def __init__(self, config: dict, fault: dict | None):
        import torch

        self.config = FractureDetectionConfig.model_validate(config)
        self.fault = fault
        self.device = _device()
        torch.set_num_threads(self.config.cpus_per_trainer)  # oversubscribed threads crawl on CPUs
        self._splits = None

    def splits(self) -> dict:
        if self._splits is None:
            self._splits = load_splits(self.config)
        return self._splits

    def train(self, unit: Unit, target: TrackingTarget) -> dict:
        config = self.config.model_copy(update={"seed": unit.params["seed"]})
        return train_and_calibrate(config, self.splits(), unit, target, self.fault, self.device)

    def evaluate(self, unit: Unit, target: TrackingTarget, deps: dict) -> dict:
        test = self.splits()["test"]
        return evaluate_model(self.config, test, unit, target, self.fault, deps, self.device)


# --------------------------------------------------------------------------- the graph


class TrainerPool:
    """DetectionTrainer actors, created on first use: as many as the devices allow (one per GPU,
    else one per `cpus_per_trainer` CPUs), at most one per training unit. Trainings go round
    robin; an evaluation goes to the actor that trained its model. `close()` ends them."""

    def __init__(self, config: FractureDetectionConfig, slots: int | None = None):
        import ray

        from cluster.scheduler import fault_hook

        resources = ray.cluster_resources()
        gpus = config.gpus_per_trainer
        if gpus is None:
            gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
        if slots is None:
            by_gpu = int(resources.get("GPU", 0) // gpus) if gpus else None
            slots = by_gpu if by_gpu else int(resources.get("CPU", 1) // config.cpus_per_trainer)
        self.slots = max(1, slots)
        self.cls = ray.remote(DetectionTrainer).options(
            num_cpus=config.cpus_per_trainer,
            num_gpus=gpus,
            max_restarts=config.max_retries,
            max_task_retries=config.max_retries,
        )
        self.payload = config.model_dump(mode="json")
        self.fault = fault_hook()
        self.actors: list = []
        self.owner: dict[str, int] = {}
        self._next = 0

    def _actor(self, index: int):
        while len(self.actors) <= index:
            self.actors.append(self.cls.remote(self.payload, self.fault))
        return self.actors[index]

    def train(self, unit: Unit, target: TrackingTarget):
        index = self._next % self.slots
        self._next += 1
        self.owner[unit.key] = index
        return self._actor(index).train.remote(unit, target)

    def evaluate(self, unit: Unit, target: TrackingTarget, deps: dict):
        index = self.owner.get(unit.params["train_unit"])
        if index is None:  # trained in an earlier run: any actor will do
            index = self._next % self.slots
            self._next += 1
        return self._actor(index).evaluate.remote(unit, target, deps)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors.clear()


def graph(pairs: list[tuple[Unit, Unit]], target: TrackingTarget, pool: TrainerPool) -> list[Node]:
    """Nodes for cluster.scheduler.run_graph: each training unit, then its evaluation unit."""
    tracker = target.tracker()

    def reuse_train(unit, run_id):
        blob = tracker.load_blob(run_id, "operating_points.json")
        return {"key": unit.key, "run_id": run_id, "operating_points": json.loads(blob) if blob else None}

    def reuse_eval(unit, run_id):
        metrics = tracker.client.get_run(run_id).data.metrics
        return {
            "key": unit.key,
            "run_id": run_id,
            "metrics": metrics,
            "curves": tracker.load_table(run_id, "curves.parquet"),
        }

    nodes = []
    for train, evaluation in pairs:
        nodes.append(Node(train, lambda u, _deps: pool.train(u, target), (), reuse_train))
        nodes.append(
            Node(evaluation, lambda u, deps: pool.evaluate(u, target, deps), (train.key,), reuse_eval)
        )
    return nodes


# --------------------------------------------------------------------------- report


def report(
    config: FractureDetectionConfig, pairs, results: dict, out_dir: Path, tracker
) -> tuple[pa.Table, list[Path]]:
    """Per-seed test metrics (and mean with 95% CI over seeds), fig. 2.3-style ROC/FROC, models."""
    from core.detection.evaluate import SUMMARY_METRICS
    from core.detection.figures import roc_froc_figure
    from core.detection.operating_points import OperatingPoints
    from core.metrics.detection import DetectionCurves
    from stats import mean_ci
    from stats.figures import save_figure
    from stats.tables import Report, markdown_table

    out_dir.mkdir(parents=True, exist_ok=True)
    rows, curves, points, files = [], {}, {}, []
    for train, evaluation in pairs:
        seed = train.params["seed"]
        metrics = results[evaluation.key]["metrics"]
        rows.append({"seed": seed, **{k: float(v) for k, v in sorted(metrics.items())}})
        table = results[evaluation.key]["curves"]
        curves[f"seed {seed}"] = DetectionCurves(**{n: table[n].to_numpy() for n in table.column_names})
        ops = results[train.key].get("operating_points")
        if ops:
            points[f"seed {seed}"] = OperatingPoints.from_dict(ops)
            (out_dir / f"operating_points_seed{seed}.json").write_text(json.dumps(ops, indent=2))
            files.append(out_dir / f"operating_points_seed{seed}.json")
        model = tracker.load_blob(results[train.key]["run_id"], MODEL)
        if model is not None:
            path = out_dir / f"model_seed{seed}.pt"
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(model)  # not logged again: it is in the training run
            tmp.replace(path)
    table = pa.Table.from_pylist(rows)
    seeds = table["seed"].to_pylist()
    header = ["metric"] + [f"seed {s}" for s in seeds] + (["mean [95% CI]"] if len(seeds) > 1 else [])
    body = []
    names = table.column_names[1:]
    first = sorted(
        (n for n in names if n.startswith(("roc_auc", "aufroc"))), key=lambda n: (n != "roc_auc", n)
    )
    at_points = [f"{p}.{m}" for p in ("DOUBT", "FRACTURE") for m in ("threshold", *SUMMARY_METRICS)]
    rest = [n for n in names if n not in first + at_points]
    ordered = first + [n for n in at_points if n in names] + rest
    for name in ordered:
        values = table[name].to_numpy()
        line = [name] + [f"{v:.4g}" for v in values]
        if len(seeds) > 1:
            ci = mean_ci(values)
            line.append(f"{ci.mean:.4g} [{ci.ci_low:.4g}, {ci.ci_high:.4g}]")
        body.append(line)
    data = "the test split" + (
        " of the embedded synthetic set (generated by this project)" if config.embedded else ""
    )
    markdown = (
        f"Fracture detection on {data}: ROC AUC (patient-wise), AUFROC normalised over its FP range, and "
        "every metric at the DOUBT / FRACTURE operating points chosen on the development split.\n\n"
        + markdown_table(header, body)
    )
    files += list(Report("detection_metrics", table, markdown).write(out_dir).values())
    fig = roc_froc_figure(
        curves,
        fp_per=config.froc_fp_per,
        fp_range=config.froc_fp_range,
        operating_points=points,
        title="Fracture detector on the test set" + (" (embedded synthetic data)" if config.embedded else ""),
    )
    files.append(save_figure(fig, out_dir / "roc_froc.png"))
    return table, files
