"""Bootstrap intervals: exact small cases, scipy.stats.bootstrap, coverage by simulation, groups, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import stats as st

from stats import bootstrap_ci, bootstrap_distribution


def _frequencies(values: np.ndarray, support) -> np.ndarray:
    return np.array([np.mean(np.isclose(values, s)) for s in support])


def test_exact_distribution_of_the_mean_of_two_values():
    # Resampling [0, 1] twice: mean 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4.
    _, dist = bootstrap_distribution([0.0, 1.0], "mean", n_resamples=40_000, seed=1)
    np.testing.assert_allclose(_frequencies(dist, [0, 0.5, 1]), [0.25, 0.5, 0.25], atol=0.01)


def test_exact_distribution_of_the_median_of_three_values():
    # Median of 3 draws from {1, 2, 10}: 1 needs two 1s or more (7/27), same for 10, else 2 (13/27).
    estimate, dist = bootstrap_distribution([10.0, 1.0, 2.0], "median", n_resamples=54_000, seed=2)
    assert estimate == 2.0
    np.testing.assert_allclose(_frequencies(dist, [1, 2, 10]), [7 / 27, 13 / 27, 7 / 27], atol=0.01)


@pytest.mark.parametrize(
    ("name", "x", "fn"),
    [
        ("mean", "v", lambda v, axis: v.mean(axis=axis)),
        ("median", "sorted", lambda v, axis: np.median(v, axis=axis)),
        ("mae", "v", lambda v, axis: np.abs(v).mean(axis=axis)),
        ("paired_diff", "ab", lambda a, b, axis: (a - b).mean(axis=axis)),
        ("sensitivity", "tp", lambda t, p, axis: (t * p).sum(axis=axis) / t.sum(axis=axis)),
        ("specificity", "tp", lambda t, p, axis: ((1 - t) * (1 - p)).sum(axis=axis) / (1 - t).sum(axis=axis)),
    ],
)
def test_vectorised_statistics_equal_the_plain_definition_on_the_same_resamples(name, x, fn):
    # The named statistics are computed from per-unit sums or a weighted median; a callable gets
    # the gathered resamples. Same seed, same draws: the replicates must agree to rounding. (The
    # median relabels observations by rank, so its draws map to the same values on sorted data.)
    rng = np.random.default_rng(3)
    v, w = rng.normal(size=301), rng.normal(size=301)
    truth = rng.random(301) < 0.4
    call = np.where(truth, rng.random(301) < 0.8, rng.random(301) < 0.2)
    data = {"v": v, "sorted": np.sort(v), "ab": (v, w), "tp": (truth.astype(float), call.astype(float))}[x]
    est_named, named = bootstrap_distribution(data, name, n_resamples=3000, seed=7)
    est_plain, plain = bootstrap_distribution(data, fn, n_resamples=3000, seed=7)
    assert est_named == pytest.approx(est_plain, rel=1e-12)
    np.testing.assert_allclose(named, plain, rtol=1e-9, atol=1e-12)


def test_estimates_are_the_statistics_of_the_data():
    rng = np.random.default_rng(4)
    pred, target = rng.normal(100, 10, 80), rng.normal(100, 10, 80)
    assert bootstrap_ci((pred, target), "mae", n_resamples=200).estimate == pytest.approx(
        np.mean(np.abs(pred - target))
    )
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 1], bool)
    call = np.array([1, 1, 0, 1, 0, 1, 0, 0, 0, 1], bool)
    sens = bootstrap_ci((truth, call), "sensitivity", n_resamples=200)
    spec = bootstrap_ci((truth, call), "specificity", n_resamples=200)
    assert sens.estimate == pytest.approx(4 / 5) and spec.estimate == pytest.approx(4 / 5)
    assert 0 <= sens.low <= sens.estimate <= sens.high <= 1
    a, b = rng.normal(size=30), rng.normal(1, size=40)
    assert bootstrap_ci((a, b), "diff", n_resamples=200).estimate == pytest.approx(a.mean() - b.mean())


@pytest.mark.parametrize(("method", "scipy_method"), [("bca", "BCa"), ("percentile", "percentile")])
@pytest.mark.parametrize("statistic", ["mean", "median"])
def test_agrees_with_scipy_bootstrap(method, scipy_method, statistic):
    # Different random streams: agreement within Monte-Carlo error (a small part of the width).
    x = np.random.default_rng(5).exponential(size=200)
    ours = bootstrap_ci(x, statistic, level=0.90, method=method, n_resamples=20_000, seed=0)
    fn = np.mean if statistic == "mean" else np.median
    ref = st.bootstrap(
        (x,), fn, confidence_level=0.90, method=scipy_method, n_resamples=20_000, random_state=1
    ).confidence_interval
    width = ref.high - ref.low
    assert abs(ours.low - ref.low) < 0.08 * width
    assert abs(ours.high - ref.high) < 0.08 * width


def test_two_sample_bca_agrees_with_scipy():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=40), rng.exponential(size=60)
    ours = bootstrap_ci((a, b), "diff", n_resamples=20_000)
    ref = st.bootstrap(
        (a, b), lambda u, v, axis: u.mean(axis) - v.mean(axis), n_resamples=20_000, random_state=1
    ).confidence_interval
    width = ref.high - ref.low
    assert abs(ours.low - ref.low) < 0.05 * width and abs(ours.high - ref.high) < 0.05 * width


@pytest.mark.parametrize("method", ["bca", "percentile"])
def test_coverage_of_the_95_percent_interval_by_simulation(method):
    # 1,000 normal samples of 200 with true mean 0: the interval must cover 0 in 93-97% of them.
    data = np.random.default_rng(7).normal(size=(1000, 200))
    covered = 0
    for i, sample in enumerate(data):
        r = bootstrap_ci(sample, "mean", level=0.95, method=method, n_resamples=1000, seed=i)
        covered += r.low <= 0.0 <= r.high
    assert 930 <= covered <= 970, covered


def test_level_widens_the_interval_and_bca_is_not_percentile_on_skewed_data():
    x = np.random.default_rng(8).lognormal(sigma=1.0, size=100)
    r90 = bootstrap_ci(x, level=0.90)
    r95 = bootstrap_ci(x, level=0.95)
    assert r95.low < r90.low < r90.estimate < r90.high < r95.high
    pct = bootstrap_ci(x, level=0.95, method="percentile")
    assert r95.high > pct.high  # BCa moves the interval towards the long right tail


def test_seeded_and_reproducible():
    x = np.random.default_rng(9).normal(size=50)
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    assert bootstrap_ci(x, seed=3) != bootstrap_ci(x, seed=4)
    gen_a, gen_b = np.random.default_rng(11), np.random.default_rng(11)
    assert bootstrap_ci(x, seed=gen_a) == bootstrap_ci(x, seed=gen_b)


def test_constant_data_give_a_zero_width_interval():
    r = bootstrap_ci(np.full(20, 3.5))
    assert (r.estimate, r.low, r.high) == (3.5, 3.5, 3.5)


def test_paired_interval_is_narrower_than_independent_when_pairs_are_correlated():
    rng = np.random.default_rng(10)
    subject = rng.normal(0, 5, 60)
    a, b = subject + rng.normal(0.5, 1, 60), subject + rng.normal(0, 1, 60)
    paired = bootstrap_ci((a, b), "paired_diff")
    independent = bootstrap_ci((a, b), "diff")
    assert paired.estimate == pytest.approx(independent.estimate)
    assert (paired.high - paired.low) < 0.5 * (independent.high - independent.low)


# ----------------------------------------------------------------------------- groups


def test_one_observation_per_group_is_the_ungrouped_bootstrap():
    x = np.random.default_rng(12).normal(size=120)
    for method in ("bca", "percentile"):
        grouped = bootstrap_ci(x, method=method, groups=np.arange(120))
        assert grouped == bootstrap_ci(x, method=method)
    # The median without groups draws positions in the sorted data, with groups the groups'
    # labels: other resamples, the same distribution (within Monte-Carlo error).
    med_grouped = bootstrap_ci(x, "median", groups=np.arange(120) * 7 + 3, n_resamples=20_000)
    med_plain = bootstrap_ci(x, "median", n_resamples=20_000)
    assert med_grouped.estimate == med_plain.estimate
    width = med_plain.high - med_plain.low
    assert abs(med_grouped.low - med_plain.low) < 0.1 * width
    assert abs(med_grouped.high - med_plain.high) < 0.1 * width


def test_one_observation_per_group_matches_the_ungrouped_distribution_with_arbitrary_labels():
    # Shuffled string labels: a different mapping of draws to values, the same distribution.
    rng = np.random.default_rng(13)
    x = rng.exponential(size=150)
    labels = np.array([f"patient-{i}" for i in rng.permutation(150)])
    _, grouped = bootstrap_distribution(x, "mean", n_resamples=20_000, seed=1, groups=labels)
    _, plain = bootstrap_distribution(x, "mean", n_resamples=20_000, seed=2)
    assert not np.array_equal(grouped, plain)
    assert np.std(grouped) == pytest.approx(np.std(plain), rel=0.03)
    np.testing.assert_allclose(
        np.quantile(grouped, [0.025, 0.5, 0.975]), np.quantile(plain, [0.025, 0.5, 0.975]), atol=0.02
    )
    assert st.ks_2samp(grouped, plain).pvalue > 0.001


def test_groups_widen_the_interval_when_observations_within_a_group_are_correlated():
    # 20 patients x 10 exams sharing a patient effect: the exams are not 200 independent values.
    rng = np.random.default_rng(14)
    patients = np.repeat(np.arange(20), 10)
    x = rng.normal(0, 2, 20)[patients] + rng.normal(0, 0.5, 200)
    naive = bootstrap_ci(x)
    grouped = bootstrap_ci(x, groups=patients)
    assert grouped.estimate == pytest.approx(naive.estimate)
    assert (grouped.high - grouped.low) > 2 * (naive.high - naive.low)
    # With equal group sizes the grouped SE is that of the 20 patient means.
    patient_means = x.reshape(20, 10).mean(axis=1)
    assert grouped.standard_error == pytest.approx(patient_means.std(ddof=0) / np.sqrt(20), rel=0.06)


def test_grouped_median_and_two_sample_groups():
    rng = np.random.default_rng(15)
    g = np.repeat(np.arange(30), 4)
    x = rng.normal(0, 1, 30)[g] + rng.normal(0, 0.2, 120)
    assert bootstrap_ci(x, "median", groups=g).high - bootstrap_ci(x, "median", groups=g).low > 0
    b = rng.normal(size=50)
    r = bootstrap_ci((x, b), "diff", groups=(g, np.arange(50)))
    assert r.estimate == pytest.approx(x.mean() - b.mean())
    assert r.high - r.low > bootstrap_ci((x, b), "diff").high - bootstrap_ci((x, b), "diff").low


def test_callable_statistic_with_groups_runs_one_resample_at_a_time():
    rng = np.random.default_rng(16)
    g = np.repeat(np.arange(15), 3)
    x = rng.normal(size=45)
    r = bootstrap_ci(x, lambda v, axis: np.std(v, axis=axis), n_resamples=300, groups=g)
    assert r.low < np.std(x) < r.high


# ----------------------------------------------------------------------------- errors and speed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": []}, "empty"),
        ({"x": [1.0, np.nan, 2.0]}, "NaN"),
        ({"x": [[1.0, 2.0]]}, "1-D"),
        ({"x": [1.0, 2.0], "level": 95}, "level must be in \\(0, 1\\)"),
        ({"x": [1.0, 2.0], "level": 0.0}, "level must be in"),
        ({"x": [1.0, 2.0], "statistic": "mode"}, "unknown statistic 'mode'"),
        ({"x": [1.0, 2.0], "method": "bootstrap-t"}, "unknown method 'bootstrap-t'"),
        ({"x": ([1.0, 2.0], [1.0]), "statistic": "paired_diff"}, "same length"),
        ({"x": [1.0, 2.0, 3.0], "groups": [1, 2]}, "one label per observation"),
        ({"x": [1.0, 2.0, 3.0], "groups": [1, 1, 1]}, "single group"),
        ({"x": ([0, 0, 0], [1, 0, 1]), "statistic": "sensitivity"}, "no positive case"),
        ({"x": ([1, 1], [1, 0]), "statistic": "specificity"}, "no negative case"),
        ({"x": ([1, 2, 0], [1, 0, 1]), "statistic": "sensitivity"}, "booleans or 0/1"),
        ({"x": [1.0, 2.0], "statistic": "diff"}, "x = \\(a, b\\)"),
        ({"x": [1.0, 2.0], "n_resamples": 0}, "n_resamples"),
    ],
)
def test_bad_input_is_a_clear_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(**kwargs)


def test_ten_thousand_resamples_of_a_thousand_values_in_well_under_a_second():
    x = np.random.default_rng(17).normal(size=1000)
    bootstrap_ci(x, n_resamples=1000)  # warm-up
    start = time.perf_counter()
    r = bootstrap_ci(x, n_resamples=10_000)
    elapsed = time.perf_counter() - start
    assert r.n_resamples == 10_000
    assert elapsed < 1.0, f"{elapsed:.3f} s"
