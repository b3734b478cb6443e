"""The bone-age training loop (thesis 6.3.2) as a plain class, with exact checkpoint/resume.

`Trainer` trains `BoneAgeNet` epoch by epoch: AdamW with a per-step cosine schedule (optional
linear warm-up), weighted L1 loss on targets normalised by the train mean/SD, the thesis'
augmentations, an EMA of the weights (`core.ema.EMA`, floating buffers averaged too;
evaluated and used for prediction), mixed precision on GPU and gradient accumulation
(micro-batches; halved automatically on a CUDA out-of-memory). Batch order, augmentations and
drop-path noise of epoch e are seeded from (seed, e), so a run resumed from the state of epoch
k ends with the same weights as one that never stopped.

It is a trainable for `cluster.lifecycle`: `position` / `total` (epochs done and to do),
`step()` (one epoch), `state_dict()` / `load_state_dict()` (tensors and plain values; saved and
read by `core.checkpoint`, weights_only). The Ray actor in cluster/boneage/trainer.py wraps it;
it also runs as is in a notebook (`fit()`).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from core.boneage.augment import augment, tta_views
from core.boneage.config import ModelConfig, TrainConfig
from core.boneage.dataset import HandImages, LabelArrays
from core.boneage.model import BoneAgeNet, load_backbone_weights
from core.checkpoint import FORMAT_KEY, check_format
from core.ema import EMA
from core.progress import Progress

CHECKPOINT_FORMAT = "boneage-trainer-2"  # 2: the EMA's own state dict (core.ema)


def _fingerprint(model_cfg: ModelConfig, train_cfg: TrainConfig, use_ca: bool, n_train: int) -> str:
    data = {"model": model_cfg.model_dump(), "train": train_cfg.model_dump(), "use_ca": use_ca, "n": n_train}
    for key in ("num_workers", "cache_images", "eval_batch_size", "micro_batch_size"):
        data["train"].pop(key)  # do not change the result
    return json.dumps(data, sort_keys=True)


class Trainer:
    """Trains one bone-age model on a record table; `predict` gives bone ages in months."""

    def __init__(
        self,
        model_config: ModelConfig,
        train_config: TrainConfig,
        train: pd.DataFrame,
        val: pd.DataFrame | None = None,
        weights: np.ndarray | None = None,
        use_ca: bool = False,
        device: str | torch.device = "cpu",
        name: str = "bone-age",
        log: Callable[[str], None] = print,
    ):
        if len(train) == 0:
            raise ValueError("the training set is empty")
        self.model_config, self.config = model_config, train_config
        self.use_ca, self.name, self.log = use_ca, name, log
        self.device = torch.device(device)
        self.gpu = self.device.type == "cuda"
        torch.manual_seed(train_config.seed)
        self.labels = LabelArrays(train, weights)
        if use_ca and not self.labels.has_ca:
            raise ValueError("use_ca needs a chronological age for every training image (RSNA has none)")
        model = BoneAgeNet(model_config, use_ca)
        ba = train["bone_age"].to_numpy(np.float64)
        ca = train["chronological_age"].to_numpy(np.float64)
        model.set_normalisation(
            ba.mean(),
            max(ba.std(), 1e-6),
            ca.mean() if use_ca else 0.0,
            max(ca.std(), 1e-6) if use_ca else 1.0,
        )
        self.init_note = "random initialisation (no pretrained checkpoint given)"
        if model_config.pretrained:
            info = load_backbone_weights(model, model_config.pretrained)
            self.init_note = (
                f"backbone from {model_config.pretrained} ({info['loaded']} tensors, "
                f"{len(info['missing'])} left at random init)"
            )
        self.model = model.to(self.device)
        self.ema = (
            EMA(self.model, train_config.ema_decay, train_config.ema_warmup, buffers="average")
            if train_config.ema_decay
            else None
        )
        decay, no_decay = [], []
        for p in self.model.parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)
        self.optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": train_config.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=train_config.lr,
        )
        self.amp_dtype = None
        if self.gpu and train_config.amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        size, cache = train_config.image_size, train_config.cache_images
        self.train_images = HandImages(train, size, cache, f"{name}: train images")
        self.val_frame = val if val is not None and len(val) else None
        self.val_images = (
            HandImages(val, size, cache, f"{name}: val images") if self.val_frame is not None else None
        )
        self.val_labels = LabelArrays(val) if self.val_frame is not None else None
        self.steps_per_epoch = math.ceil(len(train) / train_config.batch_size)
        self.total_steps = self.steps_per_epoch * train_config.epochs
        self.micro_batch = train_config.micro_batch_size or train_config.batch_size
        self.epoch, self.iteration = 0, 0  # epochs and optimiser steps done
        self.history: list[dict] = []
        self.fingerprint = _fingerprint(model_config, train_config, use_ca, len(train))
        self._progress: Progress | None = None  # batches of this attempt, made on the first step

    @property
    def position(self) -> int:
        """Epochs done (the lifecycle's step count)."""
        return self.epoch

    @property
    def total(self) -> int:
        """Epochs of the whole training."""
        return self.config.epochs

    # ---- schedule and randomness ------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine annealing to 0 over the remaining steps."""
        warm = int(round(self.config.warmup_epochs * self.steps_per_epoch))
        if step < warm:
            return self.config.lr * (step + 1) / warm
        progress = (step - warm) / max(1, self.total_steps - warm)
        return 0.5 * self.config.lr * (1.0 + math.cos(math.pi * min(1.0, progress)))

    def _epoch_seed(self, epoch: int) -> int:
        return (self.config.seed * 1_000_003 + epoch * 7919) % (2**62)

    def _autocast(self):
        if self.amp_dtype is not None:
            return torch.autocast("cuda", dtype=self.amp_dtype)
        return contextlib.nullcontext()

    # ---- training ---------------------------------------------------------------------------
    def _batch_loss(self, images: torch.Tensor, y: dict, total: int) -> float:
        """Forward/backward of one batch in micro-batches; gradients = those of the batch mean."""
        loss_sum = 0.0
        for start in range(0, len(images), self.micro_batch):
            sl = slice(start, start + self.micro_batch)
            with self._autocast():
                pred = self.model(images[sl], y["male"][sl], y["ca"][sl] if self.use_ca else None)
            target = self.model.to_normalised(y["bone_age"][sl])
            loss = (y["weight"][sl] * (pred.float() - target).abs()).sum() / total
            self.scaler.scale(loss).backward()
            loss_sum += float(loss.detach())
        return loss_sum

    def train_epoch(self, progress: Progress | None = None) -> dict:
        """One epoch over the training set; returns its record (loss, lr, time, validation MAE)."""
        self.model.train()
        seed = self._epoch_seed(self.epoch)
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # drop-path noise
        order = torch.randperm(len(self.train_images), generator=gen).tolist()
        batches = [
            order[i : i + self.config.batch_size] for i in range(0, len(order), self.config.batch_size)
        ]
        start, losses, seen = time.perf_counter(), [], 0
        for raw, index in self.train_images.batches(batches, self.config.num_workers):
            images = augment(raw.to(self.device, non_blocking=True), self.config.augment, gen)
            y = self.labels.take(index, self.device)
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr_at(self.iteration)
            while True:
                self.optimizer.zero_grad(set_to_none=True)
                try:
                    loss = self._batch_loss(images, y, len(index))
                    break
                except torch.OutOfMemoryError:
                    if self.micro_batch == 1:
                        raise
                    self.micro_batch = max(1, self.micro_batch // 2)
                    torch.cuda.empty_cache()
                    self.log(f"{self.name}: out of GPU memory, gradient accumulation over {self.micro_batch}")
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update(self.model)
            self.iteration += 1
            losses.append(loss)
            seen += len(index)
            if progress:
                progress.update()
        self.epoch += 1
        seconds = time.perf_counter() - start
        record = {
            "epoch": self.epoch,
            "train_loss": float(np.mean(losses)),
            "lr": self.lr_at(self.iteration - 1),
            "seconds": seconds,
            "images_per_s": seen / seconds,
        }
        if self.val_images is not None:
            record["val_mae"] = self.val_mae(tta=False)
        self.history.append(record)
        return record

    @property
    def initial(self) -> dict | None:
        """The validation record of epoch 0 (before any training), once `step` has measured it."""
        return self.history[0] if self.history and self.history[0]["epoch"] == 0 else None

    def step(self) -> dict:
        """One epoch (the validation MAE before training first, when starting from scratch); its
        record: loss, lr, seconds, images/s and validation MAE."""
        if self.epoch == 0 and not self.history and self.val_images is not None:
            self.history.append({"epoch": 0, "val_mae": self.val_mae(tta=False)})  # before training
        if self._progress is None:
            left = (self.total - self.epoch) * self.steps_per_epoch
            self._progress = Progress(left, f"{self.name}: training", unit="batches", every=10.0)
        record = self.train_epoch(self._progress)
        val = f", val MAE {record['val_mae']:.2f} months" if "val_mae" in record else ""
        self.log(
            f"{self.name}: epoch {record['epoch']}/{self.total} loss {record['train_loss']:.4f}"
            f"{val}, lr {record['lr']:.2e}, {record['images_per_s']:.1f} images/s"
        )
        return record

    def fit(self) -> list[dict]:
        """Train to `epochs` (from where a loaded state left off); the history."""
        while self.position < self.total:
            self.step()
        return self.history

    # ---- inference --------------------------------------------------------------------------
    @property
    def inference_model(self) -> BoneAgeNet:
        return self.ema.module if self.ema is not None else self.model

    @torch.no_grad()
    def predict_images(self, images: HandImages, labels: LabelArrays, tta: bool | None = None) -> np.ndarray:
        """Bone ages (months) of every image; TTA averages the four flips (thesis 6.3.2)."""
        tta = self.config.tta if tta is None else tta
        model = self.inference_model
        was_training = model.training
        model.eval()
        bs = self.config.eval_batch_size
        order = [list(range(i, min(i + bs, len(images)))) for i in range(0, len(images), bs)]
        out = []
        for raw, index in images.batches(order, self.config.num_workers):
            x = raw.to(self.device, non_blocking=True)
            y = labels.take(index, self.device)
            views = tta_views(x) if tta else [x]
            with self._autocast():
                preds = [model(v, y["male"], y["ca"] if self.use_ca else None).float() for v in views]
            out.append(model.to_months(torch.stack(preds).mean(0)).cpu())
        model.train(was_training)
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)

    def predict(self, frame: pd.DataFrame, tta: bool | None = None, name: str = "images") -> np.ndarray:
        """Bone ages (months) of a record table (e.g. the clinical set)."""
        if self.use_ca and not np.all(np.isfinite(frame["chronological_age"].to_numpy(np.float64))):
            raise ValueError(f"{name}: this model needs the chronological age of every image")
        images = HandImages(frame, self.config.image_size, self.config.cache_images, f"{self.name}: {name}")
        return self.predict_images(images, LabelArrays(frame), tta)

    def val_mae(self, tta: bool = False) -> float:
        pred = self.predict_images(self.val_images, self.val_labels, tta)
        return float(np.mean(np.abs(pred - self.val_labels.bone_age.numpy())))

    # ---- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything a resumed training needs, as tensors and plain values."""
        return {
            FORMAT_KEY: CHECKPOINT_FORMAT,
            "fingerprint": self.fingerprint,
            "epoch": self.epoch,
            "step": self.iteration,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "micro_batch": self.micro_batch,
            "history": self.history,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state`; one of another format or recipe is refused, naming why."""
        check_format(state, CHECKPOINT_FORMAT)
        if state["fingerprint"] != self.fingerprint:
            raise ValueError("checkpoint was written by a different model/recipe/training set")
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.iteration = int(state["epoch"]), int(state["step"])
        self.micro_batch = int(state["micro_batch"])
        self.history = [dict(r) for r in state["history"]]
