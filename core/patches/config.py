"""The fracture-patch task as validated data: where the patches are, how they are labelled, and the
fine-tuning recipe of a candidate network (SPEC.md §2, thesis 5.3.1 and 5.3.5).

Defaults are the thesis': boxes with a detector score above 10, positive above IoU 0.5, negative
below 0.2, 5 epochs of SGD (lr 0.02 cosine to 0, momentum 0.9, batch 128, weight decay 1e-4)
with an EMA of the weights (0.99). Choices the thesis does not state are marked as ours.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from core.config import Config


class SyntheticPatchConfig(Config):
    """The embedded default: patches drawn by the project (not radiographs), see core.patches.synthetic."""

    studies: int = Field(160, ge=10, description="studies (exams); about half have fractures")
    max_images: int = Field(3, ge=1, le=6, description="images (views) per study: 1 to this")
    negatives_per_image: float = Field(3.0, gt=0, description="mean false detector boxes per image")
    patch_size: int = Field(32, ge=16, le=256, description="stored patch side in pixels")
    split: tuple[float, float, float] = Field((0.6, 0.2, 0.2), description="train/val/test, by study")
    seed: int = 0


class PatchDataConfig(Config):
    """A patch manifest (Parquet/CSV) and its image folder, or the embedded synthetic set."""

    manifest: str | None = Field(
        None, description="Parquet or CSV manifest; None: the embedded synthetic set"
    )
    images: str | None = Field(
        None, description="folder the manifest's paths are relative to; None: its folder"
    )
    columns: dict[str, str] = Field(
        default_factory=dict, description="logical column -> header in the manifest, when names differ"
    )
    min_score: float = Field(10.0, description="keep boxes whose detector score is above this (strictly)")
    positive_iou: float = Field(0.5, gt=0, le=1, description="IoU above this: a fracture (positive)")
    negative_iou: float = Field(0.2, ge=0, le=1, description="IoU below this: negative for training")
    input_size: int = Field(236, ge=16, description="square network input; patches are resized to it")
    in_memory: bool | None = Field(
        None,
        description="decode every patch once and share them through Ray's object store; None: when small",
    )
    check_files: bool = Field(True, description="check that every patch image exists before any work")
    synthetic: SyntheticPatchConfig = Field(default_factory=SyntheticPatchConfig)

    @model_validator(mode="after")
    def _thresholds(self):
        if self.negative_iou > self.positive_iou:
            raise ValueError(
                f"negative_iou ({self.negative_iou}) must not exceed positive_iou ({self.positive_iou})"
            )
        return self

    @property
    def embedded(self) -> bool:
        return self.manifest is None


class FinetuneRecipe(Config):
    """How one candidate is fine-tuned and scored (thesis 5.3.5)."""

    epochs: int = Field(5, ge=1)
    lr: float = Field(0.02, gt=0, description="initial learning rate, cosine-annealed to 0 per step")
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(1e-4, ge=0)
    batch_size: int = Field(128, ge=1, description="global batch, split over the workers of a cluster")
    ema_decay: float | None = Field(0.99, gt=0, lt=1, description="EMA of the weights; None: no EMA")
    ema_warmup: bool = Field(
        True,
        description="ours: decay min(d, (1+n)/(10+n)) over the first n steps, so that a short run is not "
        "scored with weights that are mostly the initial ones",
    )
    flips: bool = Field(True, description="ours: random horizontal and vertical flips of training patches")
    dropout: float = Field(0.1, ge=0, lt=1, description="before the classifier (OFA's default)")
    bn_recalibration: int = Field(
        2000,
        ge=0,
        description="ours (OFA's practice for sub-networks): training patches used to re-estimate the "
        "batch-norm statistics of the evaluated (EMA) model before scoring; 0 keeps the running statistics",
    )
    eval_batch_size: int = Field(256, ge=1)
    amp: bool = Field(True, description="bf16 autocast on GPU (ignored on CPU)")
    seed: int = 0
    loader_workers: int = Field(
        0, ge=0, description="image-decoding processes when patches are not in memory"
    )
