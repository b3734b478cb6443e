"""In-memory image splits, batches and the standard CIFAR augmentation, all seeded.

Data small enough for memory (CIFAR-10 is 150 MB as uint8) is kept as tensors; batches are
drawn with an explicit torch.Generator so that a resumed training sees the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # (N, C, H, W) float32, normalised
    y: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.y)


def batches(split: Split, batch_size: int, generator: torch.Generator, drop_last: bool = False):
    """Shuffled mini-batches of one epoch."""
    order = torch.randperm(len(split), generator=generator)
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    for i in range(0, stop, batch_size):
        idx = order[i : i + batch_size]
        yield split.x[idx], split.y[idx]


def augment_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding and random horizontal flip (the standard CIFAR recipe)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None]).view(n, 1, h, 1)
    cols = (dx[:, None] + torch.arange(w)[None]).view(n, 1, 1, w)
    batch = torch.arange(n).view(n, 1, 1, 1)
    chan = torch.arange(x.shape[1]).view(1, -1, 1, 1)
    out = padded[batch, chan, rows, cols]
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out
