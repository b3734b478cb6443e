"""The detector recipe as validated data, with two explicit presets (`PRESETS`, a core.config.Presets).

- `thesis`: the real recipe for real radiographs (thesis 2.3.1, SPEC 4): Mask R-CNN with a
  ResNet-50 FPN (torchvision `maskrcnn_resnet50_fpn_v2`), 270,000 iterations of SGD with batch 4,
  Detectron2's "3x" schedule (LR steps at 210k and 250k iterations, linear warm-up over 1,000) and
  its multi-scale training (shorter side 640-800, longer at most 1,333). The thesis gives no
  learning rate: Detectron2's 0.02 for batch 16 scaled linearly to batch 4, 0.005.
- `cpu-small`: the same Mask R-CNN family reduced so that the embedded synthetic set trains and
  evaluates on a CPU in minutes: ResNet-18 FPN with 64 channels, 128-pixel images, small
  anchors, fewer proposals and a short schedule. For tests and demonstrations, not for real data.

A job resolves its config with `PRESETS` (defaults < preset < file < flags): the preset "auto"
(the default) is `cpu-small` on the embedded set and `thesis` on real data (`preset_for`). Keys
left at None in a config built by hand take its preset's value (`resolved()`); any key can be
overridden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.config import Config, Presets

DATA_KEYS = ("coco", "train_json")  # a job config's real-data keys: either one means real data


def preset_for(user: dict) -> str:
    """The preset "auto" stands for: cpu-small on the embedded set, thesis on real data."""
    return "thesis" if any(user.get(key) for key in DATA_KEYS) else "cpu-small"


PRESETS = Presets(
    table={
        "thesis": {
            "backbone": "resnet50",
            "fpn_channels": 256,
            "head_channels": 256,
            "box_fc": 1024,
            "anchor_sizes": [32, 64, 128, 256, 512],
            "min_size": [640, 672, 704, 736, 768, 800],
            "max_size": 1333,
            "rpn_pre_nms_top_n_train": 2000,
            "rpn_pre_nms_top_n_test": 1000,
            "rpn_post_nms_top_n_train": 2000,
            "rpn_post_nms_top_n_test": 1000,
            "rpn_batch_size_per_image": 256,
            "box_batch_size_per_image": 512,
            "detections_per_image": 100,
            "iterations": 270_000,
            "batch_size": 4,
            "lr": 0.005,
            "warmup_iterations": 1000,
            "lr_decay_at": [210_000 / 270_000, 250_000 / 270_000],
            "checkpoint_every": 5000,
            "num_workers": 4,
        },
        "cpu-small": {
            "backbone": "resnet18",
            "fpn_channels": 64,
            "head_channels": 64,
            "box_fc": 256,
            "anchor_sizes": [8, 16, 32, 64, 128],
            "min_size": [112, 128, 144],
            "max_size": 160,
            "rpn_pre_nms_top_n_train": 300,
            "rpn_pre_nms_top_n_test": 300,
            "rpn_post_nms_top_n_train": 150,
            "rpn_post_nms_top_n_test": 100,
            "rpn_batch_size_per_image": 64,
            "box_batch_size_per_image": 32,
            "detections_per_image": 30,
            "iterations": 320,
            "batch_size": 4,
            "lr": 0.02,
            "warmup_iterations": 30,
            "lr_decay_at": [0.8],
            "checkpoint_every": 100,
            "num_workers": 0,
        },
    },
    default="auto",
    notes={
        "thesis": "the recipe of thesis 2.3.1",
        "cpu-small": "reduced for CPUs: not the real-data recipe, which is preset 'thesis'",
    },
    auto=preset_for,
)
PRESET_KEYS = tuple(PRESETS.table["thesis"])


class DetectorConfig(Config):
    """Model, weights, optimisation and augmentation of a detector. None: the preset's value."""

    backend: Literal["torchvision", "detectron2"] = "torchvision"
    preset: Literal["thesis", "cpu-small"] = "thesis"
    # architecture
    backbone: Literal["resnet18", "resnet34", "resnet50", "resnet101"] | None = None
    fpn_channels: int | None = Field(None, ge=8)
    head_channels: int | None = Field(None, ge=8)
    box_fc: int | None = Field(None, ge=8, description="box head representation size")
    anchor_sizes: list[int] | None = Field(None, description="one anchor size per FPN level (5)")
    min_size: list[int] | None = Field(None, description="shorter side choices (multi-scale training)")
    max_size: int | None = Field(None, ge=32)
    rpn_pre_nms_top_n_train: int | None = Field(None, ge=1)
    rpn_pre_nms_top_n_test: int | None = Field(None, ge=1)
    rpn_post_nms_top_n_train: int | None = Field(None, ge=1)
    rpn_post_nms_top_n_test: int | None = Field(None, ge=1)
    rpn_batch_size_per_image: int | None = Field(None, ge=1)
    box_batch_size_per_image: int | None = Field(None, ge=1)
    detections_per_image: int | None = Field(None, ge=1)
    box_score_thresh: float = Field(0.01, ge=0, lt=1, description="low: the curves need low scores too")
    # weights (local files only; nothing is downloaded)
    weights: str | None = Field(None, description="full Mask R-CNN state dict or an exported detector")
    backbone_weights: str | None = Field(None, description="ResNet state dict (e.g. ImageNet)")
    trainable_backbone_layers: int | None = Field(
        None, ge=0, le=5, description="None: 5 from scratch, 3 else"
    )
    # optimisation
    iterations: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_iterations: int | None = Field(None, ge=0)
    warmup_factor: float = Field(0.001, gt=0, le=1)
    lr_decay_at: list[float] | None = Field(
        None, description="fractions of the iterations where lr *= lr_gamma"
    )
    lr_gamma: float = Field(0.1, gt=0, le=1)
    checkpoint_every: int | None = Field(None, ge=1)
    num_workers: int | None = Field(None, ge=0, description="data-loading processes")
    seed: int = 0
    amp: bool = Field(False, description="bf16 autocast on GPU")
    # augmentation (the thesis: rotation, flips, translation, cropping, resizing)
    train_on_negatives: bool = True
    hflip_prob: float = Field(0.5, ge=0, le=1)
    vflip_prob: float = Field(0.0, ge=0, le=1)
    rotation_degrees: float = Field(10.0, ge=0, le=180)
    translate: float = Field(0.05, ge=0, lt=0.5)
    scale_range: tuple[float, float] = (0.9, 1.1)
    brightness: float = Field(0.1, ge=0, lt=1)
    contrast: float = Field(0.1, ge=0, lt=1)

    @field_validator("weights", "backbone_weights")
    @classmethod
    def _file_exists(cls, value, info):
        if value is not None and not Path(value).is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @field_validator("anchor_sizes")
    @classmethod
    def _five_levels(cls, value):
        if value is not None and (len(value) != 5 or any(v <= 0 for v in value)):
            raise ValueError("anchor_sizes needs 5 positive sizes, one per FPN level")
        return value

    @field_validator("min_size")
    @classmethod
    def _sizes(cls, value):
        if value is not None and (not value or any(v < 32 for v in value)):
            raise ValueError("min_size needs one or more sizes >= 32")
        return value

    @field_validator("lr_decay_at")
    @classmethod
    def _fractions(cls, value):
        if value is not None and any(not 0 < v < 1 for v in value):
            raise ValueError("lr_decay_at holds fractions of the iterations, each in ]0, 1[")
        return value

    @model_validator(mode="after")
    def _check(self):
        if self.scale_range[0] <= 0 or self.scale_range[0] > self.scale_range[1]:
            raise ValueError(f"scale_range: need 0 < low <= high, got {self.scale_range}")
        if self.backend == "detectron2":
            try:
                import detectron2  # noqa: F401
            except ImportError:
                raise ValueError(
                    "backend: detectron2 has no installable release for the PyTorch in use (2.14); "
                    "use backend 'torchvision' (the same Mask R-CNN with FPN)"
                ) from None
            raise ValueError("backend: a Detectron2 backend is not implemented yet; use 'torchvision'")
        return self

    def resolved(self) -> DetectorConfig:
        """A copy with every None key filled from the preset."""
        values = self.model_dump()
        for key, default in PRESETS.table[self.preset].items():
            if values.get(key) is None:
                values[key] = default
        return type(self).model_validate(values)

    def lr_at(self, iteration: int) -> float:
        """Learning rate of an iteration: linear warm-up, then steps (Detectron2's WarmupMultiStepLR)."""
        c = self.resolved() if self.lr is None else self
        factor = 1.0
        if iteration < c.warmup_iterations:
            alpha = iteration / c.warmup_iterations
            factor = c.warmup_factor * (1 - alpha) + alpha
        decays = sum(iteration >= int(round(f * c.iterations)) for f in c.lr_decay_at)
        return c.lr * factor * c.lr_gamma**decays

    def detector_only(self) -> DetectorConfig:
        """The DetectorConfig keys of this config (a job config subclasses it with more keys)."""
        return DetectorConfig.model_validate({k: getattr(self, k) for k in DetectorConfig.model_fields})

    def model_keys(self) -> dict:
        """The keys that decide the model's architecture (to rebuild an exported detector)."""
        c = self.resolved()
        return {k: getattr(c, k) for k in PRESET_KEYS}
