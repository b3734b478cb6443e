"""Bone-age assessment (thesis chapter 6): ConvNeXt regression with bias-correcting weights.

No Ray, no MLflow: the Ray actor and the sweep live in cluster/boneage/. Modules:

- config: the recipe (ModelConfig, TrainConfig, AugmentConfig), data sources, PRESETS;
- records: RSNA / RHPE / clinical CSV loaders with errors naming file, line and column;
- images: decoding, RHPE two-hand splitting, letterboxing; dataset: batches of images;
- synthetic: the embedded default (hands whose bone age is visible), in the real layouts;
- reference: Greulich & Pyle (Brush Foundation) SD table and the 2-SD pathological rule;
- weights: W(BA), W(DA), W(BA,DA) from scipy's gaussian_kde;
- model: BoneAgeNet (timm backbone, two-output head, optional CA input);
- augment: training augmentations and TTA views; training: Trainer (a trainable for the unit
  lifecycle: EMA, AMP, accumulation, exact resume from its state, TTA prediction);
- figures: weights plot and fig. 6.4.
"""

from core.boneage.config import (
    PRESETS,
    AugmentConfig,
    ClinicalSource,
    DataConfig,
    ModelConfig,
    RhpeSource,
    RsnaSource,
    SyntheticConfig,
    TrainConfig,
)
from core.boneage.model import BoneAgeNet, load_backbone_weights
from core.boneage.records import DataError, load_clinical, load_rhpe, load_rsna, split_patients
from core.boneage.reference import gp_sd, pathological
from core.boneage.synthetic import ensure_synthetic, synthetic_sources, write_synthetic
from core.boneage.training import Trainer
from core.boneage.weights import WEIGHTINGS, sample_weights

__all__ = [
    "PRESETS",
    "WEIGHTINGS",
    "AugmentConfig",
    "BoneAgeNet",
    "ClinicalSource",
    "DataConfig",
    "DataError",
    "ModelConfig",
    "RhpeSource",
    "RsnaSource",
    "SyntheticConfig",
    "TrainConfig",
    "Trainer",
    "ensure_synthetic",
    "gp_sd",
    "load_backbone_weights",
    "load_clinical",
    "load_rhpe",
    "load_rsna",
    "pathological",
    "sample_weights",
    "split_patients",
    "synthetic_sources",
    "write_synthetic",
]
