"""The bone-age trainer actor: it owns a device and trains one variant at a time through the
unit lifecycle (`cluster.lifecycle.run_resumable`).

`variant_work` is a variant's `Resumable`: the plain `core.boneage.training.Trainer` on the
actor's device, a checkpoint after every epoch (locally and, unless told otherwise, in the
run), then the measurements of the trained model: validation MAE with TTA and the clinical
set's predictions, tables and summary metrics. `BoneAgeTrainer` is the Ray actor around it and
`trainer_pool` the `ActorPool` that holds the sweep's actors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from cluster.boneage.config import VARIANTS, BoneAgeJobConfig
from cluster.boneage.data import SweepData
from cluster.lifecycle import Resumable, run_resumable
from cluster.pools import ActorPool
from cluster.scheduler import TrackingTarget
from cluster.units import Unit, UnitResult
from core.boneage.config import ModelConfig, TrainConfig
from core.config import flatten

TABLES = ("predictions.parquet", "history.parquet")  # what the report reads back of a finished unit


@dataclass(frozen=True)
class Recipe:
    """What every variant of a sweep trains with, resolved on the driver."""

    model: ModelConfig
    train: TrainConfig
    checkpoints: Path  # local checkpoints: <checkpoints>/<unit key>/last.pt
    checkpoint_to_mlflow: bool
    register_model: str | None = None  # registered model name of the trained variants


def _say(text: str) -> None:
    print(text, flush=True)


def variant_work(
    unit: Unit, target: TrackingTarget, recipe: Recipe, data: SweepData, device: str, fault: dict | None
) -> Resumable:
    """The variant's trainer and what the lifecycle needs to run it.

    The trainer is built before the run opens: its initialisation (which pretrained tensors it
    loaded) is one of the run's params.
    """
    from core.boneage.training import Trainer

    p = unit.params
    v = VARIANTS[p["variant"]]
    train, val = data.train[v.dataset], data.val[v.dataset]
    weights = data.weights_of(v.name)
    trainer = Trainer(
        recipe.model, recipe.train, train, val, weights, v.use_ca, device, name=v.name, log=_say
    )
    params = flatten({k: x for k, x in p.items() if k != "data"}) | {
        "init": trainer.init_note,
        "data_source": data.note,
        "n_train": len(train),
        "n_val": len(val),
        "n_clinical": len(data.clinical),
    }

    def finish(trained: Trainer, run_id: str) -> tuple[dict, dict[str, pa.Table]]:
        if trained.initial is not None:  # the validation before training: the curves' epoch 0
            target.tracker().log_steps(run_id, [trained.initial], "epoch")
        return measure(trained, v.label, train, val, data.clinical)

    return Resumable(
        setup=lambda _device: trainer,
        finish=finish,
        model=shipped_model,
        register_as=recipe.register_model,
        params=params,
        tags={"variant": v.name, "label": v.label},
        local_checkpoint=recipe.checkpoints / unit.key / "last.pt",
        checkpoint_to_mlflow=recipe.checkpoint_to_mlflow,
        die_at=int(fault.get("after_epoch", 1)) if fault else None,
    )


class BoneAgeModel(torch.nn.Module):
    """The model as it ships: bone age in months from images (uint8, N x 1 x H x W), sex (bool)
    and chronological age (months; ignored by variants without CA)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, images, male, ca):
        return self.net.to_months(self.net(images, male, ca if self.net.use_ca else None))


def shipped_model(trainer) -> tuple:
    """The trained variant (its EMA weights when it keeps them) and two validation images (two
    blank ones without a validation split) as the MLflow model's input example."""
    size = trainer.config.image_size
    images = torch.zeros(2, 1, size, size, dtype=torch.uint8)
    if trainer.val_images is not None and len(trainer.val_images) >= 2:
        images = next(iter(trainer.val_images.batches([[0, 1]], 0)))[0].to("cpu")
    example = {"images": images, "male": torch.tensor([True, False]), "ca": torch.tensor([120.0, 150.0])}
    return BoneAgeModel(trainer.inference_model), example


def measure(
    trainer, label: str, train: pd.DataFrame, val: pd.DataFrame, clinical: pd.DataFrame
) -> tuple[dict, dict[str, pa.Table]]:
    """A trained model's summary metrics (clinical set, validation with TTA, before training,
    predicting the mean) and its tables: clinical and validation predictions, the history."""
    from core.metrics.boneage import evaluation_frame, summary_metrics

    val_pred = trainer.predict_images(trainer.val_images, trainer.val_labels) if len(val) else np.zeros(0)
    frame = evaluation_frame(label, clinical, trainer.predict(clinical, name="clinical set"))
    metrics = {f"clinical_{k}": x for k, x in summary_metrics(frame).items()} | {"epochs": trainer.epoch}
    if len(val):
        truth = val["bone_age"].to_numpy(np.float64)
        metrics["val_mae_tta"] = float(np.mean(np.abs(val_pred - truth)))
        metrics["val_mae_predict_mean"] = float(np.mean(np.abs(truth - train["bone_age"].mean())))
        metrics["val_mae_initial"] = float(trainer.initial["val_mae"])
    val_table = val[["id", "patient_id", "sex", "bone_age", "chronological_age"]].assign(predicted=val_pred)
    tables = {
        "predictions.parquet": pa.Table.from_pandas(frame, preserve_index=False),
        "val_predictions.parquet": pa.Table.from_pandas(val_table, preserve_index=False),
        "history.parquet": pa.Table.from_pandas(pd.DataFrame(trainer.history), preserve_index=False),
    }
    return metrics, tables


class BoneAgeTrainer:
    """Ray actor (kept in an `ActorPool`, see cluster/boneage/sweep.py): holds the device Ray
    assigned it and trains variants on it, resuming a unit from its last checkpoint."""

    def __init__(self, threads: int = 1):
        import torch

        from cluster.devices import assigned_device

        torch.set_num_threads(threads)
        self.device = assigned_device()

    def device_name(self) -> str:
        return self.device

    def run(
        self, unit: Unit, target: TrackingTarget, fault: dict | None, recipe: Recipe, data: SweepData
    ) -> UnitResult:
        work = variant_work(unit, target, recipe, data, self.device, fault)
        return run_resumable(unit, target, work, self.device, fault)


def trainer_pool(config: BoneAgeJobConfig, variants: int) -> ActorPool:
    """The sweep's `BoneAgeTrainer` actors: one GPU each when the cluster has GPUs, else
    `cpus_per_trainer` CPUs; as many as fit (at most `max_trainers`, one per variant), each made
    on first use; a dead one is restarted `max_restarts` times and its call retried."""
    import ray

    from cluster.devices import slots

    fit = slots(gpus_per_actor=1.0, cpus_per_actor=config.cpus_per_trainer)
    size = min(fit.count, config.max_trainers or fit.count, variants)
    options = fit.options | {"max_restarts": config.max_restarts, "max_task_retries": config.max_restarts}
    where = "1 GPU" if "num_gpus" in options else f"{options['num_cpus']} CPU(s)"
    print(f"up to {size} BoneAgeTrainer actor(s), {where} each")
    return ActorPool(ray.remote(BoneAgeTrainer), size, options, (config.cpus_per_trainer,))
