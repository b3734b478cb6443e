"""The bone-age job's config: the table 6.1 variants and `BoneAgeJobConfig` (recipe, data,
variants, evaluation, actors), resolved by the recipe's `Presets` (core/boneage/config.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.boneage.config import PRESETS, DataConfig, ModelConfig, TrainConfig
from core.config import Config, flatten


@dataclass(frozen=True)
class Variant:
    """One row of table 6.1: training set, chronological-age input, sample weighting."""

    name: str  # run name, CLI value
    label: str  # as in the thesis' tables
    dataset: Literal["rsna", "rhpe"]
    use_ca: bool
    weighting: str


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("rsna", "BSL_RSNA", "rsna", False, "none"),
        Variant("rsna+w_ba", "BSL_RSNA+W(BA)", "rsna", False, "BA"),
        Variant("rhpe", "BSL_RHPE", "rhpe", False, "none"),
        Variant("rhpe+ca", "+CA", "rhpe", True, "none"),
        Variant("rhpe+ca+w_da", "+CA+W(DA)", "rhpe", True, "DA"),
        Variant("rhpe+ca+w_ba_da", "+CA+W(BA,DA)", "rhpe", True, "BA_DA"),
    )
}


class EvaluationConfig(Config):
    level: float = Field(0.90, gt=0, lt=1, description="bootstrap interval level (90% in the thesis)")
    n_resamples: int = Field(10_000, ge=100)
    method: Literal["bca", "percentile"] = "bca"
    seed: int = 0


class BoneAgeJobConfig(Config):
    experiment: str = "bone-age"
    sweep_name: str = "bone-age"
    preset: Literal["auto", "embedded", "thesis"] = Field(
        "auto", description="auto: embedded when no dataset is given, else thesis"
    )
    variants: list[str] = Field(default_factory=lambda: list(VARIANTS))
    alpha: float = Field(0.5, gt=0, description="dampening exponent of W(DA) and W(BA,DA)")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    tracking_uri: str | None = None
    register_model: str | None = Field(None, description="register the final models under this name (MLflow)")
    ray_address: str | None = None
    output_dir: str = "outputs/bone_age"
    checkpoint_dir: str | None = Field(
        None, description="local checkpoints; None: .cache/boneage/checkpoints"
    )
    checkpoint_to_mlflow: bool = Field(True, description="also store each epoch's checkpoint in the run")
    cpus_per_trainer: int = Field(1, ge=1, description="CPUs (and torch threads) of each actor")
    max_trainers: int | None = Field(None, ge=1, description="cap on concurrent actors")
    max_restarts: int = Field(3, ge=0, description="restarts of a dead actor (it resumes its unit)")

    @field_validator("variants")
    @classmethod
    def _known(cls, variants):
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown}; expected some of {list(VARIANTS)}")
        if not variants:
            raise ValueError(f"at least one variant is needed ({list(VARIANTS)})")
        if len(set(variants)) != len(variants):
            raise ValueError("a variant is listed twice")
        return variants

    @model_validator(mode="after")
    def _data_for_variants(self):
        if self.data.embedded:
            return self
        if self.data.clinical is None:
            raise ValueError("data.clinical: required when real datasets are given (the evaluation set)")
        for name in self.variants:
            dataset = VARIANTS[name].dataset
            if getattr(self.data, dataset) is None:
                raise ValueError(f"data.{dataset}: required by variant {name!r} (or drop it from variants)")
        return self

    def checkpoint_root(self) -> Path:
        """Where the actors keep their local checkpoints (`<root>/<unit key>/last.pt`)."""
        if self.checkpoint_dir:
            return Path(self.checkpoint_dir)
        from core.paths import cache_dir

        return cache_dir() / "boneage" / "checkpoints"

    def recipe_note(self) -> str:
        """The recipe in a line (said in the output, the parent run and the report)."""
        return PRESETS.note(self.preset)


def load_job_config(path: str | Path | None = None, overrides: dict | None = None) -> BoneAgeJobConfig:
    """The job's config from Python, by the job's own rule: defaults (the thesis recipe) < preset
    < file < overrides (nested mappings, merged key by key); validated."""
    return PRESETS.resolve(BoneAgeJobConfig, path, flatten(overrides or {}))
