"""The fracture-NAS job as validated data: the config models and the presets (smoke / default / thesis).

Defaults are the thesis' (docs/thesis.md §2); `PRESETS` resolves a config the one way every job
does (core.config.Presets): model defaults < preset < --config file < flags and --set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.config import Config, Presets
from core.patches.config import FinetuneRecipe, PatchDataConfig
from search.es import ESConfig


class SupernetConfig(Config):
    checkpoint: str | None = Field(
        None, description="local OFA ImageNet checkpoint (ofa_mbv3_d234_e346_k357_w1.2); None: seeded random"
    )
    seed: int = Field(0, description="seed of the random supernet (fallback and from-scratch rows)")

    @field_validator("checkpoint")
    @classmethod
    def _exists(cls, path):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"OFA supernet checkpoint not found: {path}")
        return path


class FinalStageConfig(Config):
    """Retraining after the search (thesis 5.4, table 5.1)."""

    enabled: bool = True
    top_k: int = Field(3, ge=1, description="best distinct networks of the search to retrain")
    epochs: int = Field(20, ge=1)
    reference: bool = Field(True, description="also retrain the best OFA ImageNet net")
    baselines: list[str] = Field(
        default_factory=lambda: ["resnet152", "densenet161", "efficientnet_b0", "efficientnet_b1"],
        description="timm networks",
    )
    baseline_weights: dict[str, str] = Field(
        default_factory=dict, description="timm name -> local ImageNet checkpoint (.safetensors/.pth)"
    )
    scratch: bool = Field(False, description="also train OFA and FractNet from random init (the • rows)")
    macs_input_size: int | None = Field(
        224, ge=16, description="also count multiply-adds at this input size (224: the thesis' figures)"
    )

    @field_validator("baselines")
    @classmethod
    def _known(cls, names):
        from core.patches.baselines import check_name

        for name in names:
            check_name(name)
        if len(set(names)) != len(names):
            raise ValueError("a baseline is listed twice")
        return names

    @model_validator(mode="after")
    def _weights(self):
        for name, path in self.baseline_weights.items():
            if name not in self.baselines:
                raise ValueError(f"baseline_weights: {name!r} is not in baselines {self.baselines}")
            if not Path(path).is_file():
                raise ValueError(f"baseline_weights.{name}: checkpoint not found: {path}")
        return self


class FractureNASConfig(Config):
    experiment: str = "fracture-nas"
    sweep_name: str = "fracture-nas"
    preset: Literal["smoke", "default", "thesis", "custom"] = "custom"
    data: PatchDataConfig = Field(default_factory=PatchDataConfig)
    supernet: SupernetConfig = Field(default_factory=SupernetConfig)
    recipe: FinetuneRecipe = Field(default_factory=FinetuneRecipe)
    search: ESConfig = Field(default_factory=ESConfig)
    final: FinalStageConfig = Field(default_factory=FinalStageConfig)
    clusters: int = Field(10, ge=1, description="worker clusters training candidates at once (K)")
    workers_per_cluster: int = Field(
        4, ge=1, description="GPUs (CPU processes without GPUs) of a cluster (G)"
    )
    cpus_per_worker: int = Field(1, ge=1, description="CPUs (and torch threads) of each worker")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: GPUs when the Ray cluster has some"
    )
    placement: Literal["PACK", "STRICT_PACK", "SPREAD"] = Field(
        "PACK", description="placement of a cluster's workers"
    )
    max_attempts: int = Field(3, ge=1, description="tries of a candidate whose workers die, across clusters")
    collective_timeout_s: float = Field(
        1800.0, gt=0, description="torch.distributed timeout inside a cluster"
    )
    tracking_uri: str | None = None
    register_model: str | None = Field(None, description="register the final models under this name (MLflow)")
    ray_address: str | None = None
    output_dir: str = "outputs/fracture_nas"
    cluster_gpus: int | None = Field(None, ge=1, description="dry run: estimate the wall time on N GPUs")

    @property
    def parallelism(self) -> int:
        """Candidates in flight (the optimiser's num_workers): search.parallelism, else K."""
        return self.search.parallelism or self.clusters


PRESETS = Presets(
    table={
        "smoke": {
            "data": {"input_size": 32, "synthetic": {"studies": 48}},
            "recipe": {"epochs": 1, "batch_size": 32, "eval_batch_size": 128},
            "search": {"budget": 4},
            "clusters": 2,
            "workers_per_cluster": 1,
            "final": {"epochs": 1, "baselines": ["efficientnet_b0"]},
        },
        "default": {
            "data": {"input_size": 32},
            "recipe": {"epochs": 3, "batch_size": 32},
            "search": {"budget": 12},
            "clusters": 2,
            "workers_per_cluster": 1,
            "final": {"epochs": 6},
        },
        "thesis": {"final": {"scratch": True}},
    },
    default="default",
    notes={
        "smoke": "smoke preset: 48 synthetic studies, 32x32 inputs, 4 evaluations of 1 epoch (batch 32), "
        "2 clusters x 1 worker, final stage 1 epoch with EfficientNet-b0 only; for tests",
        "default": "default preset: embedded synthetic patches at 32x32, 12 evaluations of 3 epochs "
        "(batch 32), 2 clusters x 1 worker, final stage 6 epochs, the four timm baselines "
        "(thesis scale: --preset thesis)",
        "thesis": "thesis preset: 236x236 inputs, 100 evaluations of 5 epochs (SGD 0.02 cosine, batch 128, "
        "EMA 0.99), 10 clusters x 4 GPUs, final stage 20 epochs, baselines and from-scratch rows",
        "custom": "custom config (no preset)",
    },
)


def resolve_config(preset: str, path: str | None = None, overrides: dict | None = None) -> FractureNASConfig:
    """Defaults (the thesis) < preset < file < overrides (dotted keys); validated."""
    return PRESETS.resolve(FractureNASConfig, path, (overrides or {}) | {"preset": preset})
