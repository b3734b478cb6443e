"""The detection interface every engine fills: a `Detector` predicts, a `DetectorTrainer` trains one.

An engine (torchvision today; Detectron2 could be another) implements `Detector.predict`,
`weights`/`load_weights` and `DetectorTrainer.train_step`/`state_dict`/`load_state_dict`; the
training loop, exports and evaluation here and in the jobs are shared. A `DetectorTrainer` is what
`cluster.lifecycle` runs (`position`, `total`, `step()`, state dicts): a step is a block of
iterations up to the next checkpoint. Checkpoints (`core.checkpoint`) and exports are dicts of
tensors and plain values, read back with torch.load(weights_only=True): no arbitrary unpickling.
"""

from __future__ import annotations

import io
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.detection.config import DetectorConfig
from core.detection.operating_points import OperatingPoints
from core.progress import Progress

EXPORT_FORMAT = "sweeps.detector/1"


@dataclass(frozen=True)
class Prediction:
    """Scored boxes (x0, y0, x1, y1, pixels of the input image) of one image, best first."""

    boxes: np.ndarray
    scores: np.ndarray
    masks: np.ndarray | None = None  # (n, H, W) probabilities when asked for


class Detector(ABC):
    """A fracture detector: images in, scored boxes out, with its operating points once chosen."""

    backend: str = "?"

    def __init__(self, config: DetectorConfig):
        self.config = config.detector_only().resolved()
        self.operating_points: OperatingPoints | None = None
        self.init_note = "random initialisation (no local weights given)"

    @abstractmethod
    def predict(self, images: Sequence[np.ndarray], masks: bool = False) -> list[Prediction]:
        """Images as float arrays in [0, 1], (H, W) or (H, W, 3)."""

    @abstractmethod
    def weights(self) -> dict:
        """The model's state dict (tensors)."""

    @abstractmethod
    def load_weights(self, state: dict) -> None: ...

    def export(self) -> dict:
        """Everything needed to predict again: backend, architecture keys, weights, operating points."""
        return {
            "format": EXPORT_FORMAT,
            "backend": self.backend,
            "config": self.config.model_dump(mode="json"),
            "weights": self.weights(),
            "operating_points": None if self.operating_points is None else self.operating_points.to_dict(),
        }

    def export_bytes(self) -> bytes:
        import torch

        buffer = io.BytesIO()
        torch.save(self.export(), buffer)
        return buffer.getvalue()


class DetectorTrainer(ABC):
    """Trains a Detector iteration by iteration; its state dict resumes it exactly."""

    def __init__(self, config: DetectorConfig, detector: Detector):
        self.config = config.resolved()
        self.detector = detector
        self.iteration = 0
        self.history: list[dict] = []
        self._bar: Progress | None = None

    @property
    def position(self) -> int:
        """Iterations done (the lifecycle's steps are counted in iterations)."""
        return self.iteration

    @property
    def total(self) -> int:
        return self.config.iterations

    @abstractmethod
    def train_step(self) -> dict:
        """One SGD iteration on the next batch; returns its losses and learning rate."""

    @abstractmethod
    def state_dict(self) -> dict:
        """Model, optimiser, iteration, history and random states."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None: ...

    def step(self) -> dict:
        """Iterate to the next multiple of `checkpoint_every` (or the end): the block's mean
        train loss and its last learning rate, one point of the curves per checkpoint."""
        if self._bar is None:
            self._bar = Progress(self.total - self.iteration, "train detector", unit="it", every=20)
        every = self.config.checkpoint_every
        block = self._iterate(min(self.total, (self.iteration // every + 1) * every), self._bar)
        return {"train_loss": float(np.mean([r["loss"] for r in block])), "lr": block[-1]["lr"]}

    def train(self, until: int | None = None, progress: bool = True) -> list[dict]:
        """Iterate to `until` (default: the configured iterations) in one go; the history."""
        until = self.total if until is None else until
        bar = Progress(until - self.iteration, "train detector", unit="it", every=20) if progress else None
        self._iterate(until, bar)
        return self.history

    def _iterate(self, until: int, bar: Progress | None) -> list[dict]:
        """Iterations up to `until`, each timed and added to the history; their records."""
        records = []
        while self.iteration < until:
            start = time.perf_counter()
            record = self.train_step()
            record["seconds"] = time.perf_counter() - start
            self.history.append(record)
            records.append(record)
            if bar:
                bar.update()
        return records
