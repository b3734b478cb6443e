"""Regret curves: step-function alignment, per-point mean and CI, one-shot comparison at a budget."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from stats import (
    align_runs,
    compare,
    first_values,
    log_grid,
    one_shot,
    one_shot_budget,
    regret_at,
    regret_curve,
    regret_curves,
)
from stats.regret import curves_to_arrow


def _two_runs() -> pd.DataFrame:
    # Run a evaluates at 1, 3, 5; run b at 2, 4 (given out of order): different lengths and times.
    return pd.DataFrame(
        {
            "run_id": ["a", "a", "b", "a", "b"],
            "time": [1.0, 3.0, 4.0, 5.0, 2.0],
            "regret": [5.0, 3.0, 2.0, 1.0, 4.0],
            "method": ["x"] * 5,
        }
    )


def test_alignment_is_a_step_function_nan_before_the_first_point():
    aligned = align_runs(_two_runs(), [0, 1, 1.5, 2, 3, 4, 5, 10])
    assert list(aligned.run_ids) == ["a", "b"]
    np.testing.assert_array_equal(
        aligned.values,
        [
            [np.nan, 5, 5, 5, 3, 3, 1, 1],
            [np.nan, np.nan, np.nan, 4, 4, 2, 2, 2],
        ],
    )


def test_ties_take_the_last_value_given():
    runs = pd.DataFrame({"run_id": ["a", "a"], "time": [1.0, 1.0], "regret": [3.0, 2.0]})
    assert align_runs(runs, [1.0]).values[0, 0] == 2.0


def test_curve_mean_and_t_interval_per_grid_point():
    rng = np.random.default_rng(0)
    rows = []
    for r in range(12):
        times = np.sort(rng.choice(np.arange(1, 200), size=rng.integers(5, 40), replace=False))
        regret = np.minimum.accumulate(rng.exponential(size=len(times)))
        rows.append(pd.DataFrame({"run_id": f"r{r}", "time": times, "regret": regret}))
    runs = pd.concat(rows)
    grid = np.array([50.0, 100.0, 199.0])
    curve = regret_curve(runs, grid)
    values = align_runs(runs, grid).values
    for j in range(3):
        col = values[:, j][~np.isnan(values[:, j])]
        low, high = st.t.interval(0.95, len(col) - 1, loc=col.mean(), scale=st.sem(col))
        assert curve.n[j] == len(col)
        assert curve.mean[j] == pytest.approx(col.mean(), rel=1e-12)
        assert (curve.ci_low[j], curve.ci_high[j]) == pytest.approx((low, high), rel=1e-10)
    assert curve.to_arrow().num_rows == 3


def test_default_grid_is_the_union_of_times_and_single_runs_have_no_interval():
    curve = regret_curve(_two_runs())
    np.testing.assert_array_equal(curve.grid, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(curve.mean, [5, 4.5, 3.5, 2.5, 1.5])
    np.testing.assert_array_equal(curve.n, [1, 2, 2, 2, 2])
    assert np.isnan(curve.ci_low[0]) and np.isfinite(curve.ci_low[1])


def test_curves_per_method_share_one_grid():
    runs = pd.concat(
        [
            _two_runs(),
            _two_runs().assign(method="y", run_id=lambda f: f.run_id + "2", time=lambda f: f.time * 10),
        ]
    )
    curves = regret_curves(runs, by="method")
    assert set(curves) == {"x", "y"}
    np.testing.assert_array_equal(curves["x"].grid, curves["y"].grid)
    assert curves_to_arrow(curves).num_rows == 2 * len(curves["x"].grid)


def test_log_grid():
    grid = log_grid([0.0, 2.0, 2000.0], n_points=4)
    np.testing.assert_allclose(grid, [2, 20, 200, 2000])
    with pytest.raises(ValueError, match="positive times"):
        log_grid([0.0, -1.0])


def _searches(seed: int = 1) -> pd.DataFrame:
    """RS baseline runs evaluating from t = 1; WS runs whose single first evaluation is near t = 50."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(30):
        t = np.arange(1, 101, dtype=float)
        rows.append(
            pd.DataFrame(
                {
                    "run_id": f"rs{r}",
                    "method": "RS_bs",
                    "time": t,
                    "regret": np.minimum.accumulate(rng.exponential(2.0, 100)),
                }
            )
        )
    for r in range(10):
        start = 50 + rng.normal(0, 3)
        t = start + np.arange(20, dtype=float)
        rows.append(
            pd.DataFrame(
                {
                    "run_id": f"ws{r}",
                    "method": "RS_ws",
                    "time": t,
                    "regret": np.minimum.accumulate(rng.exponential(0.05, 20)),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_regret_at_a_budget_and_runs_not_started():
    runs = _searches()
    ws = runs[runs.method == "RS_ws"]
    budget = one_shot_budget(runs, "RS_ws")
    firsts = ws.groupby("run_id").time.min()
    assert budget == pytest.approx(firsts.mean())
    late = (firsts > budget).sum()
    assert 0 < late < 10
    with pytest.raises(ValueError, match=f"{late} run\\(s\\) have no evaluation by time"):
        regret_at(ws, budget)
    assert regret_at(ws, budget, not_started="drop").num_rows == 10 - late
    first = regret_at(ws, budget, not_started="first").to_pandas().set_index("run_id")["regret"]
    for run_id, group in ws.groupby("run_id"):
        on_time = group[group.time <= budget]
        expected = on_time.regret.iloc[-1] if len(on_time) else group.regret.iloc[0]
        assert first[run_id] == expected


def test_one_shot_compares_baselines_at_the_budget_with_first_picks():
    runs = _searches()
    result = one_shot(runs, "RS_bs", "RS_ws")
    budget = one_shot_budget(runs, "RS_ws")
    baseline = regret_at(runs[runs.method == "RS_bs"], budget)["regret"].to_numpy()
    ws = runs[runs.method == "RS_ws"]
    picks = ws.groupby("run_id", sort=False).regret.first().to_numpy()  # each run's first evaluation
    assert result == compare(baseline, picks)
    firsts = first_values(ws).to_pandas()
    assert firsts.time.tolist() == ws.groupby("run_id", sort=False).time.min().tolist()
    at = {m: regret_at(runs[runs.method == m], 60.0)["regret"].to_numpy() for m in ("RS_bs", "RS_ws")}
    result = one_shot(runs, "RS_bs", "RS_ws", budget=60.0, pick="budget")
    assert result == compare(at["RS_bs"], at["RS_ws"])
    assert result.n_a == 30 and result.n_b == 10
    assert result.mean_diff > 0 and result.prob_superiority > 0.5  # WS has the smaller regret here
    with pytest.raises(ValueError, match="no runs with method == 'GS_ws'"):
        one_shot(runs, "RS_bs", "GS_ws", budget=60.0)


def test_bad_input():
    with pytest.raises(ValueError, match="missing column\\(s\\) 'regret'"):
        regret_curve(pd.DataFrame({"run_id": ["a"], "time": [1.0]}))
    with pytest.raises(ValueError, match="empty"):
        regret_curve(_two_runs().iloc[:0])
    with pytest.raises(ValueError, match="grid is empty"):
        align_runs(_two_runs(), [])
    with pytest.raises(ValueError, match="NaN or infinite"):
        regret_curve(_two_runs().assign(time=[1.0, np.nan, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match="'regret' has NaN or infinite values \\(runs \\['b'\\]\\)"):
        regret_curve(_two_runs().assign(regret=[5.0, 3.0, np.nan, 1.0, 4.0]))
    with pytest.raises(ValueError, match="unknown not_started 'later'"):
        regret_at(_two_runs(), 3.0, not_started="later")


def test_a_mean_over_all_started_runs_does_not_rise_when_a_late_run_joins():
    runs = pd.DataFrame(
        {
            "run_id": ["early", "early", "late", "late"],
            "time": [1.0, 4.0, 3.0, 5.0],
            "regret": [1.0, 0.5, 3.0, 2.0],
        }
    )
    grid = [1.0, 2.0, 3.0, 4.0, 5.0]
    joined = regret_curve(runs, grid=grid)
    np.testing.assert_allclose(joined.mean, [1.0, 1.0, 2.0, 1.75, 1.25])  # rises at t=3
    complete = regret_curve(runs, grid=grid, all_started=True)
    np.testing.assert_allclose(complete.mean, [np.nan, np.nan, 2.0, 1.75, 1.25])
    assert complete.n.tolist() == [0, 0, 2, 2, 2]
    by = regret_curves(runs.assign(method="m"), grid=grid, all_started=True)["m"]
    np.testing.assert_array_equal(by.mean, complete.mean)
