"""The fracture-detection job as validated data: the detector recipe plus data, seeds,
operating-point targets and evaluation settings.

Resolved with `core.detection.config.PRESETS` (defaults < preset < file < flags): the preset
"auto" is `cpu-small` on the embedded set and `thesis` on real data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.detection.config import DATA_KEYS, DetectorConfig
from core.metrics.detection import CH5_FP_RANGE, IOU_THRESHOLD


class FractureDetectionConfig(DetectorConfig):
    """Detector recipe + data + sweep. `preset` None until PRESETS resolves it."""

    preset: Literal["thesis", "cpu-small"] | None = None
    experiment: str = "fracture-detection"
    sweep_name: str = "fracture-detection"
    # data: one COCO file split by study, or one file per split; neither: the embedded set
    coco: str | None = None
    train_json: str | None = None
    dev_json: str | None = None
    test_json: str | None = None
    image_root: str | None = None
    categories: list[str] | None = None
    split_fractions: list[float] = Field([0.7, 0.1, 0.2], description="train, dev, test (thesis 2.3.1)")
    split_seed: int = 0
    synthetic_studies: int = Field(300, ge=12)
    synthetic_image_size: int = Field(128, ge=32)
    synthetic_seed: int = 0
    # sweep and evaluation
    seeds: list[int] = [0]
    doubt_sensitivity: float = Field(0.962, gt=0, le=1)
    fracture_specificity: float = Field(0.992, gt=0, le=1)
    operating_point_level: Literal["patient", "image"] = "patient"
    iou_threshold: float = Field(IOU_THRESHOLD, gt=0, lt=1)
    froc_fp_range: tuple[float, float] = CH5_FP_RANGE
    froc_fp_per: Literal["patient", "image"] = "patient"
    eval_batch_size: int = Field(4, ge=1)
    cpus_per_trainer: int = Field(1, ge=1)
    gpus_per_trainer: float | None = Field(None, ge=0, description="None: 1 when the cluster has GPUs")
    tracking_uri: str | None = None
    register_model: str | None = Field(None, description="register the final models under this name (MLflow)")
    ray_address: str | None = None
    output_dir: str = "outputs/fracture_detection"
    max_retries: int = Field(2, ge=0)

    @field_validator("coco", "train_json", "dev_json", "test_json")
    @classmethod
    def _exists(cls, value):
        if value is not None and not Path(value).is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @field_validator("image_root")
    @classmethod
    def _folder(cls, value):
        if value is not None and not Path(value).is_dir():
            raise ValueError(f"folder not found: {value}")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value):
        if not value or len(set(value)) != len(value):
            raise ValueError("seeds: one or more distinct seeds")
        return value

    @model_validator(mode="after")
    def _data(self):
        files = [self.train_json, self.dev_json, self.test_json]
        if self.coco and any(files):
            raise ValueError(
                "coco: give either one COCO file (split by study) or train_json/dev_json/test_json"
            )
        if any(files) and not all(files):
            raise ValueError("train_json, dev_json, test_json: give all three (or coco, or none)")
        if len(self.split_fractions) != 3 or any(f < 0 for f in self.split_fractions):
            raise ValueError("split_fractions: three fractions >= 0 (train, dev, test)")
        if min(self.split_fractions[1:]) <= 0 and not any(files):
            raise ValueError("split_fractions: the dev and test fractions must be positive")
        lo, hi = self.froc_fp_range
        if not 0 <= lo < hi:
            raise ValueError(f"froc_fp_range: need 0 <= low < high, got {self.froc_fp_range}")
        return self

    @property
    def embedded(self) -> bool:
        """No data file given: the embedded synthetic set."""
        return not any(getattr(self, key) for key in DATA_KEYS)
