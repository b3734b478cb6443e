"""The bone-age recipe as validated data. Field defaults are the thesis' (SPEC.md §3, thesis 6.3.2).

`ModelConfig` (backbone and head), `AugmentConfig`, `TrainConfig` (optimisation, EMA, TTA) and
the data sources (`RsnaSource`, `RhpeSource`, `ClinicalSource`, `SyntheticConfig`). `PRESETS`
(a `core.config.Presets`) holds named partial overrides: "thesis" is the defaults as they are
(ConvNeXt-Small, 600x600, 20 epochs); "embedded" is a tiny ConvNeXt on small synthetic images
that trains on a CPU in minutes; "auto" (the default) is "embedded" when no dataset is given and
"thesis" otherwise. A preset is applied under the user's own keys, never over them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.config import Config, Presets


class ModelConfig(Config):
    backbone: str = Field("convnext_small", description="timm model name (ConvNeXt family)")
    backbone_args: dict[str, list[int] | int | float] = Field(
        default_factory=dict, description="extra timm arguments, e.g. depths/dims of a tiny ConvNeXt"
    )
    pretrained: str | None = Field(
        None, description="local ImageNet-22k checkpoint (.safetensors/.pth/.pt); None: random init"
    )
    head_width: int = Field(256, ge=1, description="width of the two FC layers of the head")
    drop_path: float = Field(0.1, ge=0, lt=1)
    ca_features: int = Field(32, ge=1, description="size of the linear map of the normalised CA")

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, name):
        import timm

        if not timm.is_model(name):
            raise ValueError(f"unknown timm model {name!r} (e.g. convnext_small, convnext_atto)")
        return name


class AugmentConfig(Config):
    hflip: float = Field(0.5, ge=0, le=1, description="probability of a horizontal flip")
    vflip: float = Field(0.5, ge=0, le=1)
    rot90: float = Field(0.5, ge=0, le=1, description="probability of a rotation by 90, 180 or 270 deg")
    affine: float = Field(0.8, ge=0, le=1, description="probability of a random rotate/shift/scale")
    rotate_degrees: float = Field(20.0, ge=0, le=180)
    shift: float = Field(0.1, ge=0, le=0.5, description="fraction of the image size")
    scale: float = Field(0.15, ge=0, lt=1, description="zoom factor drawn in [1 - scale, 1 + scale]")
    erasing: float = Field(0.25, ge=0, le=1, description="probability of random erasing (Zhong 2020)")


class TrainConfig(Config):
    epochs: int = Field(20, ge=1)
    lr: float = Field(5e-5, gt=0)
    weight_decay: float = Field(1e-8, ge=0)
    batch_size: int = Field(16, ge=1)
    micro_batch_size: int | None = Field(
        None, ge=1, description="gradient accumulation chunk; None: the whole batch, halved on GPU OOM"
    )
    warmup_epochs: float = Field(0.0, ge=0)
    image_size: int = Field(600, ge=16, description="square input; aspect ratio kept by padding")
    ema_decay: float | None = Field(0.999, gt=0, lt=1, description="None: no EMA")
    ema_warmup: bool = Field(True, description="decay min(d, (1+n)/(10+n)) over the first updates")
    amp: bool = Field(True, description="mixed precision (bf16, or fp16 + scaler); GPU only")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    tta: bool = Field(True, description="average identity, h-flip, v-flip and both at inference")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="patients held out when no val CSV")
    seed: int = 0
    num_workers: int = Field(0, ge=0, description="image-decoding processes of the data loader")
    cache_images: bool | None = Field(None, description="keep decoded images in memory; None: when small")
    eval_batch_size: int = Field(32, ge=1)

    @model_validator(mode="after")
    def _check(self):
        if self.micro_batch_size is not None and self.micro_batch_size > self.batch_size:
            raise ValueError(
                f"micro_batch_size ({self.micro_batch_size}) cannot exceed batch_size ({self.batch_size})"
            )
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be below epochs ({self.epochs})")
        return self


class CsvSource(Config):
    """A labelled image folder: a CSV (one row per image) and the folder holding `<id>.<ext>`."""

    csv: str
    images: str
    columns: dict[str, str] = Field(
        default_factory=dict, description="logical column -> header in the CSV, when names differ"
    )
    age_unit: Literal["months", "years"] = "months"
    extensions: list[str] = Field(default_factory=lambda: [".png", ".jpg", ".jpeg"])


class RsnaSource(CsvSource):
    """RSNA layout: CSV `id, boneage, male` (months, True/False) and the image folder."""

    val_csv: str | None = None
    val_images: str | None = None

    @model_validator(mode="after")
    def _pair(self):
        if (self.val_csv is None) != (self.val_images is None):
            raise ValueError("val_csv and val_images go together")
        return self


class RhpeSource(CsvSource):
    """RHPE layout: CSV `id, male, boneage, chronological`; each image shows both hands."""

    split_hands: bool = Field(True, description="cut each radiograph into two single-hand images")
    val_csv: str | None = None
    val_images: str | None = None


class ClinicalSource(CsvSource):
    """Clinical evaluation CSV: id, sex, chronological_age, bone_age_1 and bone_age_2 (two readers,
    averaged) or bone_age, optional reference_bone_age (a reference reader) and patient_id."""


class SyntheticConfig(Config):
    """The embedded default: hands drawn by the project whose bone age shows in the image."""

    n_rsna: int = Field(600, ge=8, description="RSNA-like images (one hand, no CA, boys skewed to 13y)")
    n_rhpe: int = Field(300, ge=4, description="RHPE-like radiographs (two hands each, with CA)")
    n_clinical: int = Field(206, ge=8, description="clinical-like exams (CA uniform in [5, 17] y)")
    image_size: int = Field(96, ge=32, description="height of a rendered hand in pixels")
    seed: int = 0


class DataConfig(Config):
    rsna: RsnaSource | None = None
    rhpe: RhpeSource | None = None
    clinical: ClinicalSource | None = None
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)

    @property
    def embedded(self) -> bool:
        """True when no real dataset is given: everything comes from the synthetic set."""
        return self.rsna is None and self.rhpe is None and self.clinical is None


def _auto(user: dict) -> str:
    """The preset "auto" stands for: embedded without any dataset, else the thesis recipe."""
    data = user.get("data") or {}
    return "thesis" if any(data.get(k) for k in ("rsna", "rhpe", "clinical")) else "embedded"


# Named partial overrides of the recipe; "thesis" changes nothing.
PRESETS = Presets(
    table={
        "thesis": {},
        "embedded": {
            "model": {
                "backbone": "convnext_atto",
                "backbone_args": {"depths": [1, 1, 2, 1], "dims": [16, 32, 64, 128]},
                "head_width": 64,
                "ca_features": 8,
                "drop_path": 0.0,
            },
            "train": {
                "epochs": 15,
                "lr": 2e-3,
                "weight_decay": 0.05,
                "batch_size": 32,
                "image_size": 64,
                "ema_decay": 0.99,
                "warmup_epochs": 0.5,
                # flips stay (the TTA views); lighter geometry, no erasing: a tiny model learns faster
                "augment": {"rot90": 0.0, "affine": 0.3, "rotate_degrees": 10.0, "erasing": 0.0},
            },
        },
    },
    default="auto",
    notes={
        "thesis": "thesis recipe: ConvNeXt-Small, 600x600, 20 epochs, AdamW 5e-5 cosine, batch 16, EMA 0.999",
        "embedded": (
            "embedded preset: tiny ConvNeXt (depths 1-1-2-1, dims 16-128), 64x64, 15 epochs, AdamW 2e-3, "
            "batch 32, EMA 0.99, flips + light affine augmentation; the thesis recipe is --preset thesis"
        ),
    },
    auto=_auto,
)
