"""Record tables (core.boneage.records) as batches of letterboxed uint8 images.

Small sets are decoded once and kept in memory as one (N, 1, S, S) uint8 tensor (the embedded
default: a few MB); large ones (RSNA at 600x600 is 4.5 GB) are decoded on the fly by a torch
DataLoader with worker processes. Either way the batch order comes from the caller, so training
is reproducible and resumable whatever the number of workers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from core.boneage.images import load_hand
from core.progress import Progress

CACHE_LIMIT_BYTES = 2 << 30  # decoded images kept in memory below this size


class HandImages(Dataset):
    """Images of a record table at size x size; item i is (uint8 (1, S, S) tensor, i)."""

    def __init__(self, frame: pd.DataFrame, size: int, cache: bool | None = None, name: str = "images"):
        self.frame = frame.reset_index(drop=True)
        self.size = size
        self.name = name
        self._paths = self.frame["image"].tolist()
        self._hands = self.frame["hand"].tolist()
        if cache is None:
            cache = len(self.frame) * size * size <= CACHE_LIMIT_BYTES
        self.cached: torch.Tensor | None = self._decode_all() if cache and len(self.frame) else None

    def __len__(self) -> int:
        return len(self.frame)

    def load(self, i: int) -> np.ndarray:
        return load_hand(self._paths[i], self._hands[i], self.size)

    def _decode_all(self) -> torch.Tensor:
        out = torch.empty((len(self.frame), 1, self.size, self.size), dtype=torch.uint8)
        progress = Progress(len(self.frame), f"decoding {self.name}", unit="images", every=10.0)
        for i in range(len(self.frame)):
            out[i, 0] = torch.from_numpy(self.load(i))
            progress.update()
        return out

    def __getitem__(self, i: int):
        if self.cached is not None:
            return self.cached[i], i
        return torch.from_numpy(self.load(i)).unsqueeze(0), i

    def batches(self, order: list[list[int]], num_workers: int = 0):
        """(uint8 images (B, 1, S, S), row indices (B,)) for each list of row indices in `order`."""
        if self.cached is not None:
            for idx in order:
                index = torch.as_tensor(idx, dtype=torch.long)
                yield self.cached[index], index
            return
        loader = DataLoader(
            self,
            batch_sampler=order,
            num_workers=num_workers,
            persistent_workers=False,
            pin_memory=torch.cuda.is_available(),
        )
        yield from loader


class LabelArrays:
    """Per-row tensors of a record table: bone age, male, chronological age, sample weight."""

    def __init__(self, frame: pd.DataFrame, weights: np.ndarray | None = None):
        self.bone_age = torch.tensor(np.array(frame["bone_age"], dtype=np.float64), dtype=torch.float32)
        self.male = torch.tensor(np.array(frame["sex"] == "M", dtype=bool))
        ca = np.array(frame["chronological_age"], dtype=np.float64)
        self.has_ca = bool(np.all(np.isfinite(ca))) and len(ca) > 0
        self.ca = torch.as_tensor(np.nan_to_num(ca), dtype=torch.float32)
        w = np.ones(len(frame)) if weights is None else np.asarray(weights, dtype=np.float64)
        if len(w) != len(frame):
            raise ValueError(f"{len(w)} sample weights for {len(frame)} training images")
        self.weight = torch.tensor(np.array(w, dtype=np.float64), dtype=torch.float32)

    def take(self, index: torch.Tensor, device) -> dict[str, torch.Tensor]:
        return {
            "bone_age": self.bone_age[index].to(device, non_blocking=True),
            "male": self.male[index].to(device, non_blocking=True),
            "ca": self.ca[index].to(device, non_blocking=True),
            "weight": self.weight[index].to(device, non_blocking=True),
        }
