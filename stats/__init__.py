"""Pure statistics over runs: bootstrap intervals, t-tests, effect sizes, power; no Ray.

Arrays in, named results out. Tables and figures live in stats.tables and stats.figures, reading
MLflow runs back in stats.mlflow_io, the command line in stats.cli (`python -m stats`); those are
imported on demand so that `import stats` stays light (no matplotlib, no mlflow).
"""

from stats.bootstrap import BootstrapResult, bootstrap_ci, bootstrap_distribution
from stats.correlation import correlation_table, rank_correlation, replicate_correlations
from stats.effect_size import cohen_d, d_from_prob_superiority, pooled_sd, prob_superiority
from stats.hypothesis_tests import CompareResult, compare
from stats.intervals import MeanCI, mean_ci
from stats.power import min_detectable_effect, power, runs_needed
from stats.regret import (
    AlignedRuns,
    RegretCurve,
    align_runs,
    first_values,
    log_grid,
    one_shot,
    one_shot_budget,
    regret_at,
    regret_curve,
    regret_curves,
)

__all__ = [
    "AlignedRuns",
    "BootstrapResult",
    "CompareResult",
    "MeanCI",
    "RegretCurve",
    "align_runs",
    "bootstrap_ci",
    "bootstrap_distribution",
    "cohen_d",
    "compare",
    "correlation_table",
    "d_from_prob_superiority",
    "first_values",
    "log_grid",
    "mean_ci",
    "min_detectable_effect",
    "one_shot",
    "one_shot_budget",
    "pooled_sd",
    "power",
    "prob_superiority",
    "rank_correlation",
    "regret_at",
    "regret_curve",
    "regret_curves",
    "replicate_correlations",
    "runs_needed",
]
