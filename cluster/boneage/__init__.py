"""Chapter 6 as a sweep: the table 6.1 variants trained by `BoneAgeTrainer` Ray actors.

- config: the variants, `BoneAgeJobConfig` and `load_job_config` (the recipe's presets);
- data: `prepare_data` (every dataset loaded and checked before anything starts) and `plan`
  (one unit per variant, keyed by recipe, variant and data content);
- trainer: the variant's `Resumable` and the `BoneAgeTrainer` actor around core's `Trainer`;
- sweep: `run_sweep`, the variants on a pool of trainers through the scheduler;
- report: tables 6.1-6.3, the reader comparison, the training summary, fig. 6.4, weight plots.
"""

from cluster.boneage.config import VARIANTS, BoneAgeJobConfig, EvaluationConfig, Variant, load_job_config
from cluster.boneage.data import SweepData, plan, prepare_data
from cluster.boneage.report import report
from cluster.boneage.sweep import run_sweep

__all__ = [
    "VARIANTS",
    "BoneAgeJobConfig",
    "EvaluationConfig",
    "SweepData",
    "Variant",
    "load_job_config",
    "plan",
    "prepare_data",
    "report",
    "run_sweep",
]
