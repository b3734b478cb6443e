"""Regret curves of many runs on one time grid, their mean with a CI, and the one-shot comparison.

The one-shot comparison is thesis 4.3.3's: each weight-sharing run counts the regret of its
*first* real evaluation (its one-shot pick, after supernet training, proxy evaluations and the
pick's own training); the budget is the mean time of those first evaluations; each baseline run
counts its regret at that budget. A WS run's later, better cells do not count there: they are
what `regret_at` at a larger budget measures ("given sufficient time").

Input (Arrow table or pandas frame), one row per evaluation of a run: `run_id`, `time` (a step
count or simulated seconds; say which in the figure), `regret`, plus grouping columns such as
`method` or `space`. A run's value at grid time t is its last value at or before t (a step
function: the regret of the best architecture found so far), NaN before its first point; after its
last point it keeps its last value.

Assumptions for the intervals: runs are independent (different seeds); the per-grid-point 95% CI
is t-based over the runs that have a value there (`n`), so it is reliable for a dozen runs or more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats as _st

from stats._checks import as_vector, check_choice, check_level
from stats._frames import to_arrow, to_pandas
from stats.hypothesis_tests import CompareResult, compare

NOT_STARTED = ("raise", "drop", "first")
PICKS = ("first", "budget")  # what a one-shot run counts: its first evaluation, or its value at the budget


@dataclass(frozen=True)
class AlignedRuns:
    """`values[i, j]`: run `run_ids[i]` at `grid[j]` (NaN before its first evaluation)."""

    grid: np.ndarray
    run_ids: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class RegretCurve:
    """Mean regret per grid point over the runs with a value there (`n`), with a t-based CI."""

    grid: np.ndarray
    mean: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    sd: np.ndarray
    n: np.ndarray
    level: float

    def to_arrow(self) -> pa.Table:
        return pa.table(
            {
                "time": self.grid,
                "mean": self.mean,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "sd": self.sd,
                "n": self.n,
            }
        )


def _frame(table, time: str, value: str, run: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    frame = to_pandas(table, (run, time, value, *extra), "regret input")
    if len(frame) == 0:
        raise ValueError("regret input is empty")
    times = frame[time].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(times)):
        raise ValueError(f"column {time!r} has NaN or infinite values")
    if frame[run].isna().any():
        raise ValueError(f"column {run!r} has missing run ids")
    values = frame[value].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)):
        bad = frame.loc[~np.isfinite(values), run].unique()[:5].tolist()
        raise ValueError(f"column {value!r} has NaN or infinite values (runs {bad})")
    return frame


def _runs(frame: pd.DataFrame, time: str, value: str, run: str):
    """Run ids in order of first appearance, and per run its times (sorted) and values."""
    codes, run_ids = pd.factorize(frame[run], sort=False)
    times = frame[time].to_numpy(dtype=np.float64)
    values = frame[value].to_numpy(dtype=np.float64)
    order = np.lexsort((times, codes))  # by run, then time; stable keeps input order among ties
    codes, times, values = codes[order], times[order], values[order]
    bounds = np.searchsorted(codes, np.arange(len(run_ids) + 1))
    return np.asarray(run_ids), times, values, bounds


def align_runs(table, grid, time: str = "time", value: str = "regret", run: str = "run_id") -> AlignedRuns:
    """Each run as a step function sampled on `grid` (last value at or before each grid time)."""
    grid = np.sort(as_vector(grid, "grid"))
    frame = _frame(table, time, value, run)
    run_ids, times, values, bounds = _runs(frame, time, value, run)
    out = np.full((len(run_ids), len(grid)), np.nan)
    for i in range(len(run_ids)):
        t, v = times[bounds[i] : bounds[i + 1]], values[bounds[i] : bounds[i + 1]]
        idx = np.searchsorted(t, grid, side="right") - 1
        started = idx >= 0
        out[i, started] = v[idx[started]]
    return AlignedRuns(grid=grid, run_ids=run_ids, values=out)


def log_grid(times, n_points: int = 200) -> np.ndarray:
    """`n_points` log-spaced times from the smallest positive time to the largest (both included)."""
    t = as_vector(times, "times")
    positive = t[t > 0]
    if len(positive) == 0:
        raise ValueError("a log grid needs positive times")
    if n_points < 2:
        raise ValueError(f"n_points must be at least 2, got {n_points}")
    lo, hi = positive.min(), t.max()
    if lo == hi:
        return np.array([lo])
    return np.geomspace(lo, hi, int(n_points))


def curve_from_values(grid, values: np.ndarray, level: float = 0.95) -> RegretCurve:
    """Mean, SD, count and t-based CI per column of a (runs, grid) matrix, ignoring NaN."""
    level = check_level(level)
    values = np.asarray(values, dtype=np.float64)
    n = np.sum(~np.isnan(values), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.nansum(values, axis=0)
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        squares = np.nansum((values - mean) ** 2, axis=0)
        sd = np.where(n > 1, np.sqrt(squares / np.maximum(n - 1, 1)), np.nan)
        tq = np.where(n > 1, _st.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)), np.nan)
        half = tq * sd / np.sqrt(n)
    return RegretCurve(
        grid=np.asarray(grid, dtype=np.float64),
        mean=mean,
        ci_low=mean - half,
        ci_high=mean + half,
        sd=sd,
        n=n.astype(np.int64),
        level=level,
    )


def regret_curve(
    table,
    grid=None,
    level: float = 0.95,
    time: str = "time",
    value: str = "regret",
    run: str = "run_id",
    all_started: bool = False,
) -> RegretCurve:
    """Mean regret of the runs of `table` on `grid` (default: every time any run reports) with a CI.

    all_started=True: the mean only from the time every run has its first evaluation (NaN before),
    so that the curve is over the same runs throughout; otherwise it is over the runs started at
    each time, and can rise when a late run joins with a larger regret.
    """
    frame = _frame(table, time, value, run)
    if grid is None:
        grid = np.unique(frame[time].to_numpy(dtype=np.float64))
    aligned = align_runs(frame, grid, time, value, run)
    values = aligned.values
    if all_started:
        values = np.where(np.isnan(values).any(axis=0), np.nan, values)
    return curve_from_values(aligned.grid, values, level)


def regret_curves(
    table,
    by: str = "method",
    grid=None,
    level: float = 0.95,
    time: str = "time",
    value: str = "regret",
    run: str = "run_id",
    all_started: bool = False,
) -> dict:
    """One RegretCurve per value of column `by`, all on the same grid (default: the union of
    times); `all_started` as in regret_curve."""
    frame = _frame(table, time, value, run, (by,))
    if grid is None:
        grid = np.unique(frame[time].to_numpy(dtype=np.float64))
    return {
        key: regret_curve(group, grid, level, time, value, run, all_started)
        for key, group in frame.groupby(by, sort=False)
    }


def first_times(table, time: str = "time", run: str = "run_id") -> pa.Table:
    """Each run's first evaluation time: columns run_id (named `run`) and first_time."""
    frame = to_pandas(table, (run, time), "regret input")
    first = frame.groupby(run, sort=False)[time].min()
    return pa.table({run: first.index.to_numpy(), "first_time": first.to_numpy(dtype=np.float64)})


def first_values(table, time: str = "time", value: str = "regret", run: str = "run_id") -> pa.Table:
    """Each run's first evaluation: columns run_id (named `run`), `time` and `value` (the earliest
    row of each run; the first in input order on equal times)."""
    frame = _frame(table, time, value, run)
    run_ids, times, values, bounds = _runs(frame, time, value, run)
    first = bounds[:-1]
    return pa.table({run: run_ids, time: times[first], value: values[first]})


def one_shot_budget(table, group, by: str = "method", time: str = "time", run: str = "run_id") -> float:
    """Mean time of the first evaluation of the runs of `group`: the one-shot budget of thesis 4.3.3.

    For weight-sharing runs the first real evaluation comes after super-net training, proxy
    evaluation and training of the selected architecture; the baselines get the same budget.
    """
    frame = to_pandas(table, (run, time, by), "regret input")
    selected = frame[frame[by] == group]
    if len(selected) == 0:
        raise ValueError(f"no runs with {by} == {group!r}; present: {sorted(frame[by].unique().tolist())}")
    return float(np.mean(first_times(selected, time, run)["first_time"].to_numpy()))


def regret_at(
    table,
    budget: float,
    not_started: str = "raise",
    time: str = "time",
    value: str = "regret",
    run: str = "run_id",
) -> pa.Table:
    """Each run's regret at time `budget` (its last value at or before it): columns run_id, regret.

    A run with no evaluation by the budget: 'raise' (ValueError naming the runs), 'drop', or
    'first' (take its first value: a one-shot run whose single evaluation lands after the mean
    budget still counts with its result).
    """
    check_choice(not_started, "not_started", NOT_STARTED)
    budget = float(budget)
    frame = _frame(table, time, value, run)
    aligned = align_runs(frame, [budget], time, value, run)
    values = aligned.values[:, 0]
    missing = np.isnan(values)
    if missing.any():
        late = aligned.run_ids[missing]
        if not_started == "raise":
            shown = ", ".join(map(str, late[:5])) + (" ..." if len(late) > 5 else "")
            raise ValueError(f"{len(late)} run(s) have no evaluation by time {budget:g}: {shown}")
        if not_started == "first":
            run_ids, _, vals, bounds = _runs(frame, time, value, run)
            values = np.where(missing, vals[bounds[:-1]], values)
            missing = np.zeros_like(missing)
    keep = ~missing
    return pa.table({run: aligned.run_ids[keep], value: values[keep]})


def one_shot(
    table,
    a,
    b,
    budget: float | None = None,
    by: str = "method",
    pick: str = "first",
    not_started: str = "raise",
    equal_var: bool = True,
    alternative: str = "two-sided",
    level: float = 0.95,
    time: str = "time",
    value: str = "regret",
    run: str = "run_id",
) -> CompareResult:
    """compare() of the regrets of the runs with `by` == a at `budget` against those of the runs
    with `by` == b, the one-shot searches (thesis 4.3.3).

    pick="first" (the thesis' rule): each b run counts its first evaluation, and the budget
    defaults to the mean time of those (`one_shot_budget`). pick="budget": b runs count their
    value at the budget too (a b run not started by then: its first value). An a run without an
    evaluation by the budget follows `not_started` ('raise', 'drop', 'first').
    mean_diff > 0 means a has the larger regret, i.e. b does better (RS_bs - RS_ws > 0: weight
    sharing helps), and prob_superiority is then the chance that a b run beats an a run.
    """
    check_choice(pick, "pick", PICKS)
    frame = _frame(table, time, value, run, (by,))
    selected = {}
    for name in (a, b):
        selected[name] = frame[frame[by] == name]
        if len(selected[name]) == 0:
            present = sorted(map(str, frame[by].unique()))
            raise ValueError(f"no runs with {by} == {name!r}; present: {present}")
    if budget is None:
        budget = one_shot_budget(selected[b], b, by, time, run)
    groups = [regret_at(selected[a], budget, not_started, time, value, run)[value].to_numpy()]
    if pick == "first":
        groups.append(first_values(selected[b], time, value, run)[value].to_numpy())
    else:
        groups.append(regret_at(selected[b], budget, "first", time, value, run)[value].to_numpy())
    for name, regrets in zip((a, b), groups):
        if len(regrets) < 2:
            raise ValueError(
                f"{by} == {name!r} has {len(regrets)} run(s) with a value at {budget:g}; need 2+"
            )
    return compare(groups[0], groups[1], equal_var=equal_var, alternative=alternative, level=level)


def curves_to_arrow(curves: dict, by: str = "method") -> pa.Table:
    """Several RegretCurve in one long table: `by`, time, mean, ci_low, ci_high, sd, n."""
    frames = []
    for key, curve in curves.items():
        part = curve.to_arrow().to_pandas()
        part.insert(0, by, key)
        frames.append(part)
    return to_arrow(pd.concat(frames, ignore_index=True))
