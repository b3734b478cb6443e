"""Proxy accuracies of cells read from a trained supernet: NO-FT and BNS-FT (thesis 4.3.2).

NO-FT uses the supernet's weights and batch-norm statistics as they are. BNS-FT first
re-estimates the batch-norm statistics of the cell's path on one mini-batch of training images
(the same batch for every cell), then scores the validation split; the supernet's own
statistics are restored afterwards. Many cells are scored per call with the data already on
the device.
"""

from __future__ import annotations

import numpy as np
import torch

from core.data.images import Split
from core.models.supernet import Supernet
from core.nb101.spec import CellSpec

MODES = ("NO-FT", "BNS-FT")


class CellScorer:
    """Scores cells with one supernet; holds the validation split and the BN batch on device."""

    def __init__(
        self,
        model: Supernet,
        data: dict[str, Split],
        bn_batch: int = 256,
        seed: int = 0,
        device: str = "cpu",
        eval_batch: int = 2048,
    ):
        self.model, self.device, self.eval_batch = model.to(device), torch.device(device), eval_batch
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(data["train"]), generator=gen)[:bn_batch]
        self.bn_x = data["train"].x[idx].to(self.device)
        self.val_x = data["validation"].x.to(self.device)
        self.val_y = data["validation"].y.to(self.device)

    @torch.no_grad()
    def _accuracy(self, cell: CellSpec) -> float:
        correct = 0
        for i in range(0, len(self.val_y), self.eval_batch):
            logits = self.model(self.val_x[i : i + self.eval_batch], cell)
            correct += int((logits.argmax(1) == self.val_y[i : i + self.eval_batch]).sum())
        return correct / len(self.val_y)

    @torch.no_grad()
    def score(self, cells: list[CellSpec], mode: str = "BNS-FT") -> np.ndarray:
        """Validation accuracy of each cell under `mode`."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        out = np.empty(len(cells))
        if mode == "NO-FT":
            self.model.eval()
            for i, cell in enumerate(cells):
                out[i] = self._accuracy(cell)
            return out
        with self.model.recalibrating():
            for i, cell in enumerate(cells):
                self.model.train()
                self.model(self.bn_x, cell)  # BN statistics := this batch's, for the path's layers
                self.model.eval()
                out[i] = self._accuracy(cell)
        return out
