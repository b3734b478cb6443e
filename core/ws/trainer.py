"""SupernetTrainer: trains one supernet, epoch by epoch, with exact checkpoint/resume.

A plain class (no Ray) that the resumable-unit lifecycle runs (`cluster.lifecycle.Trainable`:
`position` epochs done of `total`, `step()` one epoch); the Ray actor in cluster/nb101/actors.py
only pins it to a device. Its state dict (saved with `core.checkpoint`) holds the model,
optimiser and scheduler states, the epoch and every random state (cell sampler, batch order,
augmentation, torch), so a run resumed from epoch k ends with the same weights as one that
never stopped.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch
import torch.nn.functional as F

from core.data.images import Split, augment_crop_flip, batches
from core.models.supernet import Supernet
from core.ws.cells import CellSampler
from core.ws.config import SupernetConfig


def load_data(config: SupernetConfig) -> dict[str, Split]:
    """The dataset of a config: digits (embedded default) or CIFAR-10 from a local folder."""
    if config.dataset == "cifar10":
        from core.data.cifar10 import cifar10_splits

        return cifar10_splits(config.cifar10_root)
    from core.data.digits import digits_splits

    return digits_splits()


class SupernetTrainer:
    """Single-path one-shot training of a supernet: each mini-batch trains a sampled cell."""

    def __init__(self, config: SupernetConfig, cells, data: dict[str, Split], device: str = "cpu"):
        self.config, self.data, self.device = config, data, torch.device(device)
        torch.manual_seed(config.seed)
        self.model = Supernet(
            config.space, config.macro, config.single_kernel, config.bn_momentum, config.bn_eps
        ).to(self.device)
        self.gpu = self.device.type == "cuda"
        if self.gpu and config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.RMSprop(
            self.model.parameters(),
            lr=config.lr,
            alpha=config.rmsprop_alpha,
            eps=config.rmsprop_eps,
            weight_decay=config.weight_decay,
            momentum=config.momentum,
        )
        steps = config.epochs * max(1, len(data["train"]) // config.batch_size)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=steps)
        self.sampler = CellSampler(cells, seed=config.seed, pro_rata=config.pro_rata)
        self.generator = torch.Generator().manual_seed(config.seed + 1)
        self.position = 0  # epochs done
        self.history: list[dict] = []

    @property
    def total(self) -> int:
        """Epochs of the whole training."""
        return self.config.epochs

    def _autocast(self):
        if self.gpu and self.config.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step(self) -> dict:
        """One epoch: each mini-batch trains one sampled path (AVG-3: three, gradients averaged)."""
        self.model.train()
        start, losses, images = time.perf_counter(), [], 0
        k = self.config.paths_per_step
        for x, y in batches(self.data["train"], self.config.batch_size, self.generator, drop_last=True):
            if self.config.use_augmentation:
                x = augment_crop_flip(x, self.generator)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if self.gpu and self.config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            self.optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for _ in range(k):
                cell = self.sampler.sample()
                with self._autocast():
                    loss = F.cross_entropy(self.model(x, cell), y) / k
                loss.backward()
                total += loss.item()
            self.optimizer.step()
            self.scheduler.step()
            losses.append(total)
            images += len(y) * k
        self.position += 1
        seconds = time.perf_counter() - start
        record = {
            "epoch": self.position,
            "loss": float(np.mean(losses)),
            "seconds": seconds,
            "images_per_s": images / seconds,
        }
        self.history.append(record)
        return record

    def train(self) -> list[dict]:
        """Train to the last epoch (in a notebook; a cluster unit steps through the lifecycle)."""
        while self.position < self.total:
            self.step()
        return self.history

    # ---- state (a checkpoint is core.checkpoint of this dict) -------------------------------
    def state_dict(self) -> dict:
        """Plain tensors and values; `epoch` keeps its name, so earlier checkpoints still load."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.position,
            "history": self.history,
            "sampler_rng": self.sampler.rng.bit_generator.state,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.position = int(state["epoch"])
        self.history = list(state["history"])
        self.sampler.rng.bit_generator.state = state["sampler_rng"]
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
