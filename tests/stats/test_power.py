"""Power analysis: the thesis' figures, statsmodels, and an independent noncentral-t computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.power import TTestIndPower, TTestPower

from stats import min_detectable_effect, power, runs_needed


def _nct_power(d: float, n1: int, n2: int, alpha: float, alternative: str) -> float:
    """Power of Student's two-sample test from the noncentral t distribution (no statsmodels)."""
    df = n1 + n2 - 2
    nc = d * np.sqrt(n1 * n2 / (n1 + n2))
    if alternative == "two-sided":
        crit = st.t.ppf(1 - alpha / 2, df)
        return st.nct.sf(crit, df, nc) + st.nct.cdf(-crit, df, nc)
    crit = st.t.ppf(1 - alpha, df)
    return st.nct.sf(crit, df, nc) if alternative == "greater" else st.nct.cdf(-crit, df, nc)


def test_thesis_runs_needed_against_100_baseline_runs():
    # Thesis 4.3.3: 100 baseline runs, d = 0.5, power 0.8, alpha 0.05.
    assert runs_needed(0.5, 100) == 47
    assert runs_needed(0.5, 100, alternative="greater") == 34
    assert runs_needed(-0.5, 100, alternative="less") == 34


def test_thesis_minimal_detectable_effect_with_25_runs():
    # 25 runs against 100: statsmodels gives d = 0.6314 two-sided, 0.5591 one-sided.
    assert min_detectable_effect(25, 100) == pytest.approx(0.6314, abs=5e-4)
    assert min_detectable_effect(25, 100, alternative="greater") == pytest.approx(0.5591, abs=5e-4)
    # So 25 runs have power 0.60 (two-sided) for d = 0.5, not 0.8.
    assert power(0.5, 25, 100) == pytest.approx(0.602, abs=1e-3)
    assert power(0.5, 25, 100, alternative="greater") == pytest.approx(0.719, abs=1e-3)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize(("d", "n1", "n2"), [(0.5, 25, 100), (0.8, 10, 10), (-0.3, 60, 40), (1.2, 5, 30)])
def test_power_matches_statsmodels_and_the_noncentral_t(d, n1, n2, alternative):
    ours = power(d, n1, n2, alternative=alternative)
    sm_alt = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
    ref = TTestIndPower().power(d, nobs1=n1, ratio=n2 / n1, alpha=0.05, alternative=sm_alt)
    assert ours == pytest.approx(ref, rel=1e-9)
    assert ours == pytest.approx(_nct_power(d, n1, n2, 0.05, alternative), abs=1e-6)


def test_power_is_symmetric_in_the_group_sizes_and_grows_with_them():
    assert power(0.5, 25, 100) == pytest.approx(power(0.5, 100, 25), rel=1e-12)
    assert power(0.5, 25, 100) < power(0.5, 26, 100) < power(0.5, 26, 101)


@pytest.mark.parametrize(
    ("d", "other", "alternative"), [(0.5, 100, "two-sided"), (0.8, 30, "greater"), (0.3, 500, "two-sided")]
)
def test_runs_needed_is_the_smallest_sufficient_number(d, other, alternative):
    n = runs_needed(d, other, alternative=alternative)
    assert power(d, n, other, alternative=alternative) >= 0.8
    assert power(d, n - 1, other, alternative=alternative) < 0.8


def test_paired_power_uses_ttestpower():
    assert power(0.5, 34) == pytest.approx(TTestPower().power(0.5, nobs=34, alpha=0.05), rel=1e-12)
    assert runs_needed(0.5) == int(np.ceil(TTestPower().solve_power(0.5, nobs=None, alpha=0.05, power=0.8)))
    assert min_detectable_effect(25) == pytest.approx(
        TTestPower().solve_power(None, nobs=25, alpha=0.05, power=0.8), rel=1e-9
    )


def test_minimal_detectable_effect_reaches_the_target_power():
    for n1, n2 in ((25, 100), (10, 10), (50, 20)):
        d = min_detectable_effect(n1, n2, power=0.9)
        assert power(d, n1, n2) == pytest.approx(0.9, abs=1e-6)


def test_unreachable_power_and_bad_input():
    with pytest.raises(ValueError, match="out of reach against 20 other runs"):
        runs_needed(0.5, 20)  # even infinitely many runs give 0.61
    with pytest.raises(ValueError, match="can never be detected"):
        runs_needed(0.5, 100, alternative="less")
    with pytest.raises(ValueError, match="can never be detected"):
        runs_needed(0.0, 100)
    with pytest.raises(ValueError, match="alpha must be in"):
        power(0.5, 10, 10, alpha=5)
    with pytest.raises(ValueError, match="n1 must be at least 2"):
        power(0.5, 1, 10)
    with pytest.raises(ValueError, match="power must be in"):
        runs_needed(0.5, 100, power=80)
    with pytest.raises(ValueError, match="unknown alternative"):
        min_detectable_effect(10, 10, alternative="up")


def test_huge_effects_have_power_one_where_the_noncentral_t_underflows():
    """statsmodels returns NaN for some very large effects; the normal limit takes over."""
    from stats import power as power_fn
    from stats import runs_needed as needed

    assert power_fn(16.53, 2, 3) == pytest.approx(1.0, abs=1e-6)
    assert needed(16.53, n_other=3) == 2
    assert power_fn(-16.53, 2, 3, alternative="greater") < 1e-6
