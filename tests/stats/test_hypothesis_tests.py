"""compare(): against scipy.stats.ttest_ind / ttest_rel and against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from stats import cohen_d, compare, pooled_sd, prob_superiority


def _samples(seed: int, na: int, nb: int):
    rng = np.random.default_rng(seed)
    return rng.normal(0.3, 1.0, na), rng.normal(0.0, 2.0, nb)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("equal_var", [True, False])
@pytest.mark.parametrize(("seed", "na", "nb"), [(0, 25, 100), (1, 7, 5), (2, 40, 40)])
def test_independent_tests_match_scipy(seed, na, nb, equal_var, alternative):
    a, b = _samples(seed, na, nb)
    ours = compare(a, b, equal_var=equal_var, alternative=alternative, level=0.9)
    ref = st.ttest_ind(a, b, equal_var=equal_var, alternative=alternative)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
    assert ours.df == pytest.approx(ref.df, rel=1e-10)
    # The CI is two-sided whatever the alternative: compare with scipy's two-sided interval.
    ci = st.ttest_ind(a, b, equal_var=equal_var).confidence_interval(0.9)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert ours.mean_diff == pytest.approx(a.mean() - b.mean())
    assert ours.pooled_sd == pytest.approx(pooled_sd(a, b))
    assert ours.cohen_d == pytest.approx(cohen_d(a, b))
    assert ours.prob_superiority == pytest.approx(prob_superiority(cohen_d(a, b)))


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_paired_test_matches_scipy(alternative):
    rng = np.random.default_rng(3)
    unaided = rng.normal(70, 12, 12)
    aided = unaided + rng.normal(8, 6, 12)
    ours = compare(aided, unaided, paired=True, alternative=alternative)
    ref = st.ttest_rel(aided, unaided, alternative=alternative)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
    ci = st.ttest_rel(aided, unaided).confidence_interval(0.95)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert ours.test == "paired" and ours.df == 11


def test_hand_computed_pooled_and_welch():
    a, b = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0, 8.0]
    # Pooled variance 4.4, SE sqrt(4.4 * (1/3 + 1/4)), 5 degrees of freedom.
    pooled = compare(a, b)
    t = -3.0 / np.sqrt(4.4 * 7 / 12)
    assert pooled.statistic == pytest.approx(t, rel=1e-12)  # -1.87256
    assert pooled.df == 5
    assert pooled.pvalue == pytest.approx(2 * st.t.sf(abs(t), 5), rel=1e-12)
    half = st.t.ppf(0.975, 5) * np.sqrt(4.4 * 7 / 12)
    assert (pooled.ci_low, pooled.ci_high) == pytest.approx((-3 - half, -3 + half), rel=1e-12)
    assert pooled.cohen_d == pytest.approx(-3.0 / np.sqrt(4.4), rel=1e-12)
    # Welch: SE^2 = 1/3 + (20/3)/4 = 2, df = 4 / ((1/3)^2 / 2 + (5/3)^2 / 3) = 4.0755
    welch = compare(a, b, equal_var=False)
    assert welch.statistic == pytest.approx(-3.0 / np.sqrt(2.0), rel=1e-12)
    assert welch.df == pytest.approx(4.0 / ((1 / 3) ** 2 / 2 + (5 / 3) ** 2 / 3), rel=1e-12)


def test_hand_computed_paired():
    # Differences 1, 2, 2, 3: mean 2, SD sqrt(2/3), t = 2 / (sqrt(2/3) / 2) = 4.899 on 3 df.
    r = compare([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 1.0, 1.0], paired=True, alternative="greater")
    assert r.mean_diff == 2.0
    assert r.statistic == pytest.approx(2.0 / (np.sqrt(2 / 3) / 2), rel=1e-12)
    assert r.pvalue == pytest.approx(st.t.sf(r.statistic, 3), rel=1e-12)


def test_thesis_direction_positive_d_means_the_second_group_does_better():
    # RS_bs - RS_ws > 0: the weight-sharing runs (b) have the smaller regret.
    rng = np.random.default_rng(4)
    baseline, ws = rng.normal(2.0, 1.0, 100), rng.normal(1.0, 1.0, 25)
    r = compare(baseline, ws)
    assert r.mean_diff > 0 and r.cohen_d > 0 and r.prob_superiority > 0.5


def test_constant_groups_give_nan_not_an_error():
    r = compare([1.0, 1.0, 1.0], [1.0, 1.0])
    assert np.isnan(r.statistic) and np.isnan(r.pvalue) and np.isnan(r.cohen_d)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([1.0], [1.0, 2.0]), {}, "a needs at least 2"),
        (([], [1.0, 2.0]), {}, "a is empty"),
        (([1.0, 2.0], [1.0, 2.0, 3.0]), {"paired": True}, "same length"),
        (([1.0, 2.0], [1.0, 3.0]), {"alternative": "bigger"}, "unknown alternative 'bigger'"),
        (([1.0, 2.0], [1.0, 3.0]), {"level": 1.0}, "level must be in"),
        (([1.0, np.inf], [1.0, 3.0]), {}, "NaN or infinite"),
    ],
)
def test_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare(*args, **kwargs)
