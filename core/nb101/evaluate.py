"""Train one NB-101 cell from scratch in the NB-101 network and evaluate it, as the benchmark did.

NB-101's recipe (its `config.py` defaults): 128 stem filters, 3 stacks of 3 cells, batch 256,
108 epochs, RMSProp (decay 0.9, momentum 0.9, epsilon 1.0) at 0.1 x 2 TPU shards = 0.2 with a
cosine decay by step, L2 weight decay 1e-4, random crop and flip; evaluated on the train,
validation and test splits before training, at each intermediate fraction (halfway) and at
the end. PyTorch's RMSProp puts epsilon outside the square root where TensorFlow puts it
inside, and batch norm follows PyTorch: accuracies match NB-101's in distribution, not to the
bit. Training time counts training steps only, as NB-101's does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.data.images import Split, augment_crop_flip
from core.models.nb101_net import NB101Network, count_trainable
from core.nb101.params import Macro
from core.nb101.spec import CellSpec


@dataclass(frozen=True)
class Recipe:
    """How a cell is trained and when it is evaluated; every number is a knob."""

    stem_filters: int = 128
    num_stacks: int = 3
    modules_per_stack: int = 3
    num_labels: int = 10
    batch_size: int = 256
    epochs: float = 108
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 1e-4
    rmsprop_alpha: float = 0.9
    rmsprop_eps: float = 1.0
    evaluations: tuple[float, ...] = (0.5, 1.0)  # fractions of `epochs`, ascending, ending at 1
    augment: bool = True
    eval_batch_size: int = 1024
    seed: int = 0
    device: str = "cpu"
    torch_threads: int | None = None  # CPU threads; None keeps torch's default

    def __post_init__(self):
        fractions = list(self.evaluations)
        if not fractions or fractions != sorted(fractions) or fractions[-1] != 1.0 or fractions[0] <= 0:
            raise ValueError(f"evaluations: ascending fractions in (0, 1] ending at 1, got {fractions}")
        if self.epochs <= 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs, batch_size and lr must be positive")

    @property
    def macro(self) -> Macro:
        return Macro(self.stem_filters, self.num_stacks, self.modules_per_stack, self.num_labels, 3)


def _accuracy(net: torch.nn.Module, split: Split, batch: int, device: torch.device) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(split), batch):
            x, y = split.x[i : i + batch].to(device), split.y[i : i + batch].to(device)
            correct += int((net(x).argmax(dim=1) == y).sum())
    return correct / len(split)


def _batches(n: int, batch_size: int, generator: torch.Generator):
    """Endless shuffled mini-batch indices, epoch after epoch (the last short batch dropped)."""
    while True:
        order = torch.randperm(n, generator=generator)
        for i in range(0, n - batch_size + 1, batch_size):
            yield order[i : i + batch_size]


def train_and_evaluate(cell: CellSpec, data: dict[str, Split], recipe: Recipe = Recipe()) -> dict:
    """Train `cell` and evaluate it; NB-101's metadata: trainable_params, total_time, evaluation_results."""
    if not cell.valid:
        raise ValueError(f"cannot train an invalid cell (input does not reach output): {cell!r}")
    device = torch.device(recipe.device)
    if recipe.torch_threads:
        torch.set_num_threads(recipe.torch_threads)
    torch.manual_seed(recipe.seed)
    net = NB101Network(cell, recipe.macro).to(device)
    train = data["train"]
    batch_size = min(recipe.batch_size, len(train))
    total_steps = max(1, int(recipe.epochs * len(train) / batch_size))
    optimizer = torch.optim.RMSprop(
        net.parameters(),
        lr=recipe.lr,
        alpha=recipe.rmsprop_alpha,
        eps=recipe.rmsprop_eps,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    generator = torch.Generator().manual_seed(recipe.seed)
    batches = _batches(len(train), batch_size, generator)
    start, trained, step = time.perf_counter(), 0.0, 0

    def evaluate(epochs: float) -> dict:
        return {
            "epochs": epochs,
            "training_time": trained,
            "training_steps": step,
            **{
                f"{name}_accuracy": _accuracy(net, data[split], recipe.eval_batch_size, device)
                for name, split in (("train", "train"), ("validation", "validation"), ("test", "test"))
            },
        }

    results = [evaluate(0.0)]
    for fraction in recipe.evaluations:
        stop = int(fraction * total_steps)
        tick = time.perf_counter()
        net.train()
        while step < stop:
            idx = next(batches)
            x, y = train.x[idx], train.y[idx]
            if recipe.augment:
                x = augment_crop_flip(x, generator)
            loss = F.cross_entropy(net(x.to(device)), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
        trained += time.perf_counter() - tick
        results.append(evaluate(fraction * recipe.epochs))
    return {
        "trainable_params": count_trainable(net),
        "total_time": time.perf_counter() - start,
        "evaluation_results": results,
    }
