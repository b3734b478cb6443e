"""The bone-age training loop (thesis 6.3.2) as a plain class, with exact checkpoint/resume.

`Trainer` trains `BoneAgeNet` epoch by epoch: AdamW with a per-step cosine schedule (optional
linear warm-up), weighted L1 loss on targets normalised by the train mean/SD, the thesis'
augmentations, an EMA of the weights (evaluated and used for prediction), mixed precision on
GPU and gradient accumulation (micro-batches; halved automatically on a CUDA out-of-memory).
Batch order, augmentations and drop-path noise of epoch e are seeded from (seed, e), so a run
resumed from the checkpoint of epoch k ends with the same weights as one that never stopped.
Checkpoints hold tensors and plain values only and are read with torch.load(weights_only=True).
The Ray actor in cluster/boneage.py wraps this class; it also runs as is in a notebook.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from core.boneage.augment import augment, tta_views
from core.boneage.config import ModelConfig, TrainConfig
from core.boneage.dataset import HandImages, LabelArrays
from core.boneage.model import BoneAgeNet, load_backbone_weights
from core.progress import Progress

CHECKPOINT_FORMAT = 1


class EMA:
    """Exponential moving average of a model's weights (buffers copied), with optional warm-up."""

    def __init__(self, model: torch.nn.Module, decay: float, warmup: bool = True):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.warmup, self.updates = decay, warmup, 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates)) if self.warmup else self.decay
        for ema, live in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema.dtype.is_floating_point:
                ema.lerp_(live.detach(), 1.0 - d)
            else:
                ema.copy_(live)


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
            EMA(self.model, train_config.ema_decay, train_config.ema_warmup)
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
        self.epoch, self.step = 0, 0
        self.history: list[dict] = []
        self.fingerprint = _fingerprint(model_config, train_config, use_ca, len(train))

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
                group["lr"] = self.lr_at(self.step)
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
            self.step += 1
            losses.append(loss)
            seen += len(index)
            if progress:
                progress.update()
        self.epoch += 1
        seconds = time.perf_counter() - start
        record = {
            "epoch": self.epoch,
            "train_loss": float(np.mean(losses)),
            "lr": self.lr_at(self.step - 1),
            "seconds": seconds,
            "images_per_s": seen / seconds,
        }
        if self.val_images is not None:
            record["val_mae"] = self.val_mae(tta=False)
        self.history.append(record)
        return record

    def fit(self, on_epoch: Callable | None = None) -> list[dict]:
        """Train to `epochs` (from where a loaded checkpoint left off); `on_epoch(trainer, record)`
        runs after each epoch (checkpointing, logging). Returns the history."""
        if self.epoch == 0 and not self.history and self.val_images is not None:
            self.history.append({"epoch": 0, "val_mae": self.val_mae(tta=False)})  # before training
        left = self.config.epochs - self.epoch
        if left <= 0:
            return self.history
        progress = Progress(left * self.steps_per_epoch, f"{self.name}: training", unit="batches", every=10.0)
        while self.epoch < self.config.epochs:
            record = self.train_epoch(progress)
            val = f", val MAE {record['val_mae']:.2f} months" if "val_mae" in record else ""
            self.log(
                f"{self.name}: epoch {record['epoch']}/{self.config.epochs} loss {record['train_loss']:.4f}"
                f"{val}, lr {record['lr']:.2e}, {record['images_per_s']:.1f} images/s"
            )
            if on_epoch:
                on_epoch(self, record)
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

    # ---- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "fingerprint": self.fingerprint,
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "ema_updates": self.ema.updates if self.ema is not None else 0,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "micro_batch": self.micro_batch,
            "history": self.history,
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}")
        if state["fingerprint"] != self.fingerprint:
            raise ValueError("checkpoint was written by a different model/recipe/training set")
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.module.load_state_dict(state["ema"])
            self.ema.updates = int(state["ema_updates"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.micro_batch = int(state["micro_batch"])
        self.history = [dict(r) for r in state["history"]]

    def checkpoint_bytes(self) -> bytes:
        buffer = io.BytesIO()
        torch.save(self.state_dict(), buffer)
        return buffer.getvalue()

    def restore_bytes(self, blob: bytes) -> None:
        """Load a checkpoint safely: torch.load(weights_only=True), no arbitrary unpickling."""
        self.load_state_dict(torch.load(io.BytesIO(blob), map_location=self.device, weights_only=True))

    def save(self, path: str | Path) -> Path:
        """Write the checkpoint atomically (temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        tmp.write_bytes(self.checkpoint_bytes())
        os.replace(tmp, path)
        return path

    def load(self, path: str | Path) -> None:
        self.restore_bytes(Path(path).read_bytes())
