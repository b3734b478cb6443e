"""Regret bookkeeping (thesis eq. 4.1) and the evaluation of cells on a tabular benchmark.

Regret after t evaluations = best mean test accuracy of the space minus the mean test
accuracy of the cell with the best validation score seen so far. The clock is simulated: each
evaluation costs the cell's training time as the space holds it (`SpaceData.training_time`): the
benchmark file's, or the one device's of a calibrated clock (cluster/nb101/clock.py), so that
every method of a comparison is charged on one clock (thesis 4.3.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from search.space_data import SpaceData

VALIDATION_MODES = ("sample", "mean")
TRAJECTORY_SCHEMA = pa.schema(
    [
        ("step", pa.int32()),
        ("sim_time", pa.float64()),
        ("hash", pa.string()),
        ("validation", pa.float64()),
        ("test_mean", pa.float64()),
        ("regret", pa.float64()),
    ]
)


def incumbents(scores: np.ndarray) -> np.ndarray:
    """Index of the best score so far at each step (the earliest one on ties)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    previous_best = np.concatenate([[-np.inf], np.maximum.accumulate(scores)[:-1]])
    improved = scores > previous_best
    return np.maximum.accumulate(np.where(improved, np.arange(len(scores)), 0))


def regret_curve(scores, test_means, best_test: float) -> np.ndarray:
    """Eq. 4.1 after every evaluation."""
    test_means = np.asarray(test_means, dtype=np.float64)
    return best_test - test_means[incumbents(scores)]


@dataclass
class Evaluator:
    """Looks a cell up in the space: (validation score, mean test accuracy, simulated seconds).

    mode "sample" draws one repeat per query (as NB-101's API does) and charges its training
    time; mode "mean" uses the mean over repeats.
    """

    space: SpaceData
    mode: str = "sample"
    seed: int = 0

    def __post_init__(self):
        if self.mode not in VALIDATION_MODES:
            raise ValueError(f"validation mode must be one of {VALIDATION_MODES}, got {self.mode!r}")
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, cell_hash: str) -> tuple[float, float, float]:
        row = self.space.row(cell_hash)
        if row is None:
            raise KeyError(f"cell {cell_hash} is not tabulated in space {self.space.name}")
        val, times = self.space.validation[row], self.space.training_time[row]
        if self.mode == "mean":
            return float(np.nanmean(val)), float(self.space.test_mean[row]), float(np.nanmean(times))
        present = np.flatnonzero(~np.isnan(val))
        r = present[self.rng.integers(len(present))]
        return float(val[r]), float(self.space.test_mean[row]), float(times[r])


def trajectory_table(hashes, scores, test_means, costs, best_test: float) -> pa.Table:
    """Arrow table of one search (schema TRAJECTORY_SCHEMA)."""
    scores = np.asarray(scores, dtype=np.float64)
    return pa.table(
        {
            "step": pa.array(np.arange(1, len(scores) + 1, dtype=np.int32)),
            "sim_time": pa.array(np.cumsum(np.asarray(costs, dtype=np.float64))),
            "hash": pa.array([str(h) for h in hashes], pa.string()),
            "validation": pa.array(scores),
            "test_mean": pa.array(np.asarray(test_means, dtype=np.float64)),
            "regret": pa.array(regret_curve(scores, test_means, best_test)),
        },
        schema=TRAJECTORY_SCHEMA,
    )


def change_points(trajectory: pa.Table) -> pa.Table:
    """The rows where the regret changes, plus the last row: the whole step function, compactly."""
    regret = trajectory["regret"].to_numpy()
    if len(regret) == 0:
        return trajectory
    keep = np.ones(len(regret), dtype=bool)
    keep[1:] = regret[1:] != regret[:-1]
    keep[-1] = True
    return trajectory.filter(pa.array(keep))
