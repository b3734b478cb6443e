"""Fine-tuning a patch classifier and scoring it with the study-wise AUFROC (thesis 5.3.5).

The recipe (`FinetuneRecipe`): SGD with momentum 0.9 and weight decay 1e-4, learning rate 0.02
annealed to 0 with a cosine over every step of the 5 epochs, batches of 128, an exponential
moving average (0.99) of the weights that is the model evaluated, after its batch-norm statistics
are re-estimated on training patches (`bn_recalibration`, OFA's practice for sub-networks; 0 turns
it off: without it a short or from-scratch run scores every patch alike). Patches whose IoU lies between
the thresholds are left out of training. Scores are the softmax probability of "fracture";
AUFROC (core.metrics.froc) on a split is the fitness.

Data parallelism: inside a worker cluster of G processes joined by `torch.distributed` (gloo on
CPU, NCCL on GPU), every rank draws the same shuffled global batches (a generator seeded by the
recipe's seed and the epoch) and trains on its share (rows rank, rank+G, ...), gradients are
averaged by DistributedDataParallel; evaluation is sharded the same way and gathered. With G = 1
it is plain single-process training; the code path is the same.

A loss that is not finite stops the training: the candidate is reported as diverged, with
AUFROC 0 (the worst), rather than crashing the search.

`PatchClassifierTrainer` is a trainer as `cluster.lifecycle` runs it: one `step()` is one epoch,
`position`/`total` count epochs (a diverged training is complete where it stopped), and
`state_dict()` holds the weights, the EMA, the optimiser, the flip generator and torch's random
state, so a restored trainer continues as the uninterrupted one would. `finetune` is the whole
life of one candidate in this process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.ema import EMA
from core.metrics.froc import patch_aufroc
from core.patches.config import FinetuneRecipe
from core.patches.dataset import PatchData, PatchSplit, iterate_batches, normalise, random_flips


@dataclass
class FinetuneResult:
    aufroc: dict[str, float]  # split -> AUFROC of the (EMA) model
    scores: dict[str, np.ndarray]  # split -> P(fracture) per patch, in the split's row order
    history: list[dict] = field(default_factory=list)  # per epoch: loss, lr, seconds, images/s
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    diverged: bool = False
    steps: int = 0


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def cosine_lr(base: float, step: int, total: int) -> float:
    """Cosine annealing from base (step 0) towards 0 (step total)."""
    return 0.5 * base * (1 + math.cos(math.pi * step / max(total, 1)))


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> list[np.ndarray]:
    """One epoch's shuffled global batches of positions 0..n-1; a last partial batch is dropped
    (unless it is the only one), so every step sees a full batch."""
    order = torch.randperm(n, generator=generator).numpy()
    if n <= batch_size:
        return [order]
    return [order[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


class PatchClassifierTrainer:
    """Trains `model` on the train split of `data` with `recipe`, an epoch per `step()`;
    `evaluate` scores other splits. `on_epoch(epoch, record)` is called after every epoch."""

    def __init__(
        self,
        model: nn.Module,
        recipe: FinetuneRecipe,
        data: PatchData,
        device: str = "cpu",
        on_epoch: Callable[[int, dict], None] | None = None,
    ):
        self.recipe, self.data, self.device, self.on_epoch = recipe, data, torch.device(device), on_epoch
        self.rank, self.world = _world()
        self.model = model.to(self.device)
        self.ema = (
            EMA(self.model, recipe.ema_decay, recipe.ema_warmup, buffers="copy") if recipe.ema_decay else None
        )
        self.net = self.model
        if self.world > 1:
            ids = None  # CPU (gloo)
            if self.device.type == "cuda":
                ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()]
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=recipe.lr,
            momentum=recipe.momentum,
            nesterov=recipe.nesterov,
            weight_decay=recipe.weight_decay,
        )
        split = data.split("train")
        self._rows = split.train_index
        self._labels = torch.from_numpy(split.frame["train_label"].to_numpy()[self._rows].astype(np.int64))
        self._flips = torch.Generator().manual_seed(recipe.seed + 1)
        per_epoch = len(epoch_batches(len(self._rows), recipe.batch_size, torch.Generator().manual_seed(0)))
        self._total_steps = per_epoch * recipe.epochs
        self.history: list[dict] = []
        self.position = 0  # epochs done
        self.steps = 0  # optimiser steps done
        self.diverged = False
        self.train_seconds = 0.0

    @property
    def total(self) -> int:
        """Epochs of the whole training; a diverged training ends where it stopped."""
        return self.position if self.diverged else self.recipe.epochs

    def _autocast(self):
        enabled = self.recipe.amp and self.device.type == "cuda"
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def step(self) -> dict:
        """One epoch of every rank's share of the same shuffled global batches; its record."""
        r = self.recipe
        if self.position == 0:
            torch.manual_seed(r.seed)  # dropout
        epoch = self.position + 1
        split = self.data.split("train")
        start = time.perf_counter()
        self.model.train()
        order = torch.Generator().manual_seed(r.seed * 1000 + epoch)
        batches = [b[self.rank :: self.world] for b in epoch_batches(len(self._rows), r.batch_size, order)]
        images = iterate_batches(
            split, [self._rows[b] for b in batches], self.data.input_size, r.loader_workers
        )
        losses, seen, lr = [], 0, r.lr
        for local, x in zip(batches, images):
            lr = cosine_lr(r.lr, self.steps, self._total_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            x = x.to(self.device, non_blocking=True)
            if r.flips:
                x = random_flips(x, self._flips)
            x = normalise(x)
            y = self._labels[local].to(self.device)
            with self._autocast():
                loss = F.cross_entropy(self.net(x).float(), y)
            if not torch.isfinite(loss):
                self.diverged = True
                break
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.ema:
                self.ema.update(self.model)
            self.steps += 1
            losses.append(float(loss.detach()))
            seen += len(local)
        seconds = time.perf_counter() - start
        self.train_seconds += seconds
        self.position = epoch
        record = {
            "epoch": epoch,
            "loss": float(np.mean(losses)) if losses else float("nan"),
            "lr": lr,
            "seconds": seconds,
            "images_per_s": seen * self.world / seconds if seconds > 0 else 0.0,
        }
        self.history.append(record)
        if self.on_epoch:
            self.on_epoch(epoch, record)
        return record

    def fit(self) -> list[dict]:
        """Every remaining epoch; the history."""
        while self.position < self.total:
            self.step()
        return self.history

    def state_dict(self) -> dict:
        """Plain tensors and values: weights, EMA, optimiser, counters and random states."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "position": self.position,
            "steps": self.steps,
            "diverged": self.diverged,
            "train_seconds": self.train_seconds,
            "history": [dict(h) for h in self.history],
            "flips": self._flips.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        if self.ema:
            state["ema"] = self.ema.state_dict()
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.position, self.steps = int(state["position"]), int(state["steps"])
        self.diverged, self.train_seconds = bool(state["diverged"]), float(state["train_seconds"])
        self.history = [dict(h) for h in state["history"]]
        self._flips.set_state(state["flips"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        if self.ema:
            self.ema.load_state_dict(state["ema"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema else self.model

    @torch.no_grad()
    def recalibrate_bn(self, model: nn.Module) -> int:
        """Re-estimate the batch-norm statistics of `model` on the first `bn_recalibration` patches of
        a fixed shuffle of the training split (the same on every rank): the EMA's averaged weights
        and a short or from-scratch training leave running statistics that do not fit the weights.
        Returns the number of patches used."""
        n = min(self.recipe.bn_recalibration, len(self.data.split("train")))
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if n == 0 or not norms:
            return 0
        split = self.data.split("train")
        rows = torch.randperm(len(split), generator=torch.Generator().manual_seed(self.recipe.seed)).numpy()[
            :n
        ]
        bs = self.recipe.eval_batch_size
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
        model.train()
        try:
            batches = [rows[i : i + bs] for i in range(0, n, bs)]
            for images in iterate_batches(split, batches, self.data.input_size, self.recipe.loader_workers):
                with self._autocast():
                    model(normalise(images.to(self.device)))
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
            model.eval()
        return n

    @torch.no_grad()
    def predict(self, split: PatchSplit) -> np.ndarray:
        """P(fracture) of every patch of the split (sharded over the ranks, gathered on all)."""
        model = self.eval_model.eval()
        rows = np.arange(len(split))[self.rank :: self.world]
        bs = self.recipe.eval_batch_size
        batches = [rows[i : i + bs] for i in range(0, len(rows), bs)]
        out = []
        for images in iterate_batches(split, batches, self.data.input_size, self.recipe.loader_workers):
            with self._autocast():
                logits = model(normalise(images.to(self.device))).float()
            out.append(torch.softmax(logits, dim=1)[:, 1].cpu().numpy())
        mine = np.concatenate(out) if out else np.zeros(0)
        if self.world == 1:
            return mine
        parts: list = [None] * self.world
        torch.distributed.all_gather_object(parts, (rows, mine))
        scores = np.zeros(len(split))
        for idx, values in parts:
            scores[idx] = values
        return scores

    def evaluate(self, splits: tuple[str, ...] = ("val",)) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        if not self.diverged:
            self.recalibrate_bn(self.eval_model)
        aufroc, scores = {}, {}
        for name in splits:
            split = self.data.split(name)
            s = self.predict(split)
            scores[name] = s
            aufroc[name] = 0.0 if self.diverged else split_aufroc(split, s)
        return aufroc, scores


class PatchScorer(nn.Module):
    """A trained patch classifier as it ships: uint8 patches (N, 3, S, S) -> P(fracture) (N,), the
    normalisation and softmax of `PatchClassifierTrainer.predict` inside the module."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(normalise(patches)).float(), dim=1)[:, 1]


def split_aufroc(split: PatchSplit, scores: np.ndarray) -> float:
    """AUFROC (0.02 to 0.5 FP per image) of scores on a split, with its evaluation labels."""
    f = split.frame
    return patch_aufroc(
        scores,
        f["study_id"].to_numpy(),
        f["image_id"].to_numpy(),
        f["test_label"].to_numpy() == 1,
        f["fracture_id"].to_numpy(),
        n_images=split.n_images or None,
    )


def finetune(
    model: nn.Module,
    recipe: FinetuneRecipe,
    data: PatchData,
    splits: tuple[str, ...] = ("val",),
    device: str = "cpu",
    on_epoch: Callable[[int, dict], None] | None = None,
) -> FinetuneResult:
    """Train then evaluate: the whole life of one candidate."""
    trainer = PatchClassifierTrainer(model, recipe, data, device, on_epoch)
    trainer.fit()
    return measure(trainer, splits)


def measure(trainer: PatchClassifierTrainer, splits: tuple[str, ...] = ("val",)) -> FinetuneResult:
    """Evaluate a trained trainer on `splits`: AUFROC, scores and the training's record."""
    start = time.perf_counter()
    aufroc, scores = trainer.evaluate(splits)
    return FinetuneResult(
        aufroc=aufroc,
        scores=scores,
        history=trainer.history,
        train_seconds=trainer.train_seconds,
        eval_seconds=time.perf_counter() - start,
        diverged=trainer.diverged,
        steps=trainer.steps,
    )
