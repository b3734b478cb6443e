"""The training unit of a fracture-detection sweep and the Ray actor that runs it.

`training()` is the unit as `cluster.lifecycle` runs it: a `DetectorTrainer` whose steps are
blocks of `checkpoint_every` iterations (a checkpoint and a point of the `train_loss` / `lr`
curves after each), then the DOUBT / FRACTURE operating points chosen on the development split
and stored with the exported model in the unit's run. `DetectionTrainer` actors (one per GPU, or
per `cpus_per_trainer` CPUs, in an `ActorPool`) load the splits once and run trainings and
evaluations on them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from cluster.detection.config import FractureDetectionConfig
from cluster.detection.data import load_splits
from cluster.detection.evaluate import evaluate_model
from cluster.detection.plan import MODEL, POINTS
from cluster.devices import assigned_device, slots
from cluster.lifecycle import Resumable, run_resumable
from cluster.pools import ActorPool
from cluster.scheduler import TrackingTarget, fault_hook
from cluster.units import Unit, UnitResult
from core.config import flatten
from core.detection.evaluate import FINDING_COLUMNS


def training(config: FractureDetectionConfig, splits: dict, unit: Unit, target: TrackingTarget) -> Resumable:
    """The training unit of `unit.params["seed"]` on the given splits."""
    from core.detection.backends import make_trainer

    c = config.model_copy(update={"seed": unit.params["seed"]})

    def setup(device: str):
        trainer = make_trainer(c.detector_only(), splits["train"], device)
        note = trainer.detector.init_note
        print(f"{unit.name}: {note}; device {device}; preset {trainer.config.preset}", flush=True)
        return trainer

    def finish(trainer, run_id: str):
        return calibrate(c, trainer, splits["dev"], unit, target.tracker(), run_id)

    return Resumable(
        setup,
        finish,
        params=flatten(unit.params),
        tags={"stage": "train", "data": splits["train"].source},  # the device: a param of the run
        step_name="iteration",
        checkpoint_every=1,  # a step is already a block of `checkpoint_every` iterations
        model=lambda trainer: shipped_model(trainer.detector, splits["dev"]),
        register_as=config.register_model,
    )


EXAMPLE_SIDE = 512  # the input example's longest side at most (it is stored as JSON in the model)


def shipped_model(detector, dev) -> tuple:
    """The trained detector (weights and operating points) as an MLflow model loaded from code
    (cluster/detection/mlflow_model.py: torch.export cannot capture Mask R-CNN, and a pickled
    module is never logged), with the first development image as its input example, subsampled
    to at most EXAMPLE_SIDE pixels a side (a radiograph would make a JSON example of megabytes)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    from cluster.tracking import CodeModel

    image = dev.images[0].load()
    image = image if image.ndim == 2 else image.mean(axis=2)  # the model reads grey levels
    stride = -(-max(image.shape) // EXAMPLE_SIDE)
    example = np.ascontiguousarray(image[::stride, ::stride], dtype=np.float32)[None]
    images = Schema([TensorSpec(np.dtype(np.float32), (-1, -1, -1))])  # any batch, any image size
    kinds = {"image": "long", "score": "float", "finding": "string"}
    boxes = Schema([ColSpec(kinds.get(c, "float"), c) for c in FINDING_COLUMNS])
    code = Path(__file__).with_name("mlflow_model.py")
    requirements = ("torch", "torchvision", "numpy", "pandas")
    model = CodeModel(
        code, {"detector": detector.export_bytes()}, ModelSignature(images, boxes), requirements
    )
    return model, example


def calibrate(c: FractureDetectionConfig, trainer, dev, unit: Unit, tracker, run_id: str):
    """Choose the operating points on dev, store the exported model (weights + points) in the run;
    the training's summary metrics and tables."""
    from core.detection.evaluate import predict_dataset
    from core.detection.operating_points import choose_operating_points
    from core.metrics.detection import match_boxes

    dev_detections = predict_dataset(trainer.detector, dev, c.eval_batch_size)
    matching = match_boxes(dev.ground_truth(), dev_detections, c.iou_threshold)
    points = choose_operating_points(
        matching, c.doubt_sensitivity, c.fracture_specificity, c.operating_point_level
    )
    trainer.detector.operating_points = points
    print(f"{unit.name}: operating points on dev: {points.describe()}", flush=True)
    tracker.set_tags(run_id, {"weights": trainer.detector.init_note})
    tracker.save_blob(run_id, MODEL, trainer.detector.export_bytes())
    tracker.save_blob(run_id, POINTS, json.dumps(points.to_dict(), indent=2).encode())
    last = trainer.history[-trainer.config.checkpoint_every :]
    metrics = {
        "iterations": trainer.iteration,
        "final_train_loss": float(np.mean([r["loss"] for r in last])),
        "train_seconds": float(sum(r["seconds"] for r in trainer.history)),
        "dev_roc_auc": matching.roc_auc(),
        "doubt_threshold": points.doubt.threshold,
        "fracture_threshold": points.fracture.threshold,
        "dev_doubt_sensitivity": points.doubt.sensitivity,
        "dev_fracture_specificity": points.fracture.specificity,
    }
    history = pa.Table.from_pylist(trainer.history)
    return metrics, {"train_history.parquet": history, "dev_detections.parquet": dev_detections}


class DetectionTrainer:
    """Ray actor owning one device (a GPU when the cluster has them, else `cpus_per_trainer` CPUs):
    trains units and evaluates them, one at a time, on splits loaded once per actor.

    Restarted by Ray if its process dies (max_restarts); the interrupted call is retried and a
    training resumes from the last checkpoint stored in its unit's MLflow run."""

    def __init__(self, config: dict, fault: dict | None):
        import torch

        self.config = FractureDetectionConfig.model_validate(config)
        self.fault = fault
        self.device = assigned_device()
        torch.set_num_threads(self.config.cpus_per_trainer)  # oversubscribed threads crawl on CPUs
        self._splits = None

    def splits(self) -> dict:
        if self._splits is None:
            self._splits = load_splits(self.config)
        return self._splits

    def train(self, unit: Unit, target: TrackingTarget) -> UnitResult:
        """A training unit; its result holds no tables (they stay in its run: the report and the
        evaluation read the model, a unit reused from MLflow reads none back either)."""
        work = training(self.config, self.splits(), unit, target)
        result = run_resumable(unit, target, work, self.device, self.fault)
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()
        return replace(result, tables={})

    def evaluate(self, unit: Unit, target: TrackingTarget, deps: dict) -> UnitResult:
        test = self.splits()["test"]
        return evaluate_model(self.config, test, unit, target, self.fault, deps, self.device)


def trainer_pool(config: FractureDetectionConfig) -> ActorPool:
    """DetectionTrainer actors, made on first use: one per GPU when the cluster has GPUs (or
    `gpus_per_trainer`), else one per `cpus_per_trainer` CPUs; `close()` ends them."""
    import ray

    gpus = 1.0 if config.gpus_per_trainer is None else config.gpus_per_trainer
    fit = slots(gpus_per_actor=gpus, cpus_per_actor=config.cpus_per_trainer)
    print(f"detection trainers: {fit.describe()}", flush=True)
    options = fit.options | {"max_restarts": config.max_retries, "max_task_retries": config.max_retries}
    args = (config.model_dump(mode="json"), fault_hook())
    return ActorPool(ray.remote(DetectionTrainer), fit.count, options, args)
