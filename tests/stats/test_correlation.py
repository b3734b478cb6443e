"""Rank correlations per replicate and their t-based CI over replicates (table 4.3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats as st

from stats import correlation_table, rank_correlation, replicate_correlations


def _cells(seed: int = 0, spaces=("A1", "A4"), variants=("NO-FT", "BNS-FT"), replicates=5, n=200):
    """Proxy = truth + noise, noisier without fine-tuning; one row per evaluated cell."""
    rng = np.random.default_rng(seed)
    rows = []
    for space in spaces:
        for variant in variants:
            noise = 3.0 if variant == "NO-FT" else 0.7
            for r in range(replicates):
                target = rng.normal(0.9, 0.02, n)
                proxy = target + rng.normal(0, 0.02 * noise, n)
                rows.append(
                    pd.DataFrame(
                        {"space": space, "variant": variant, "replicate": r, "proxy": proxy, "target": target}
                    )
                )
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("method", ["spearman", "kendall"])
def test_rank_correlation_matches_scipy(method):
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    y = x + rng.normal(size=300)
    ref = st.spearmanr(x, y).statistic if method == "spearman" else st.kendalltau(x, y).statistic
    assert rank_correlation(x, y, method) == pytest.approx(ref, rel=1e-12)
    assert np.isnan(rank_correlation(np.ones(5), np.arange(5.0)))


@pytest.mark.parametrize("method", ["spearman", "kendall"])
def test_table_is_mean_and_t_interval_over_replicates(method):
    cells = _cells()
    out = correlation_table(pa.Table.from_pandas(cells), method=method).to_pandas()
    assert list(out.columns) == [
        "space",
        "variant",
        "method",
        "mean",
        "ci_low",
        "ci_high",
        "sd",
        "n",
        "excluded",
        "excluded_replicates",
    ]
    assert list(zip(out["space"], out["variant"])) == [
        ("A1", "NO-FT"),
        ("A1", "BNS-FT"),
        ("A4", "NO-FT"),
        ("A4", "BNS-FT"),
    ]
    fn = st.spearmanr if method == "spearman" else st.kendalltau
    for row in out.itertuples():
        sub = cells[(cells.space == row.space) & (cells.variant == row.variant)]
        rhos = [fn(g.proxy, g.target).statistic for _, g in sub.groupby("replicate")]
        low, high = st.t.interval(0.95, len(rhos) - 1, loc=np.mean(rhos), scale=st.sem(rhos))
        assert row.mean == pytest.approx(np.mean(rhos), rel=1e-12)
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), rel=1e-10)
        assert row.n == 5 and row.excluded == 0
    bns = out[out.variant == "BNS-FT"]["mean"].to_numpy()
    assert np.all(bns > out[out.variant == "NO-FT"]["mean"].to_numpy())


def test_failed_replicates_are_excluded_and_flagged():
    cells = _cells(spaces=("A4",), variants=("AVG-3",))
    cells.loc[cells.replicate == 2, "proxy"] = np.nan  # diverged super-net
    cells.loc[cells.replicate == 4, "proxy"] = 0.1  # collapsed: every cell gets the same proxy
    out = correlation_table(cells).to_pandas().iloc[0]
    assert out["n"] == 3 and out["excluded"] == 2 and out["excluded_replicates"] == "2,4"
    used = [
        st.spearmanr(g.proxy, g.target).statistic for r, g in cells.groupby("replicate") if r in (0, 1, 3)
    ]
    assert out["mean"] == pytest.approx(np.mean(used))
    per_rep = replicate_correlations(cells).to_pandas()
    assert per_rep["excluded"].tolist() == [False, False, True, False, True]
    assert per_rep.loc[2, "reason"].endswith("NaN/inf proxies")
    assert per_rep.loc[4, "reason"] == "constant proxies"


def test_a_single_usable_replicate_has_no_interval_and_none_has_no_mean():
    cells = _cells(spaces=("A1",), variants=("V",), replicates=2)
    cells.loc[cells.replicate == 1, "proxy"] = np.nan
    row = correlation_table(cells).to_pandas().iloc[0]
    assert row["n"] == 1 and np.isfinite(row["mean"]) and np.isnan(row["ci_low"])
    cells["proxy"] = np.nan
    row = correlation_table(cells).to_pandas().iloc[0]
    assert row["n"] == 0 and row["excluded"] == 2 and np.isnan(row["mean"])


def test_bad_input():
    cells = _cells(spaces=("A1",), variants=("V",), replicates=2)
    with pytest.raises(ValueError, match="missing column\\(s\\) 'replicate', 'target'"):
        correlation_table(cells.drop(columns=["replicate", "target"]))
    with pytest.raises(ValueError, match="unknown method 'pearson'"):
        correlation_table(cells, method="pearson")
    with pytest.raises(ValueError, match="level must be in"):
        correlation_table(cells, level=95)
    bad = cells.copy()
    bad.loc[0, "target"] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite target"):
        correlation_table(bad)
    with pytest.raises(ValueError, match="at least 3"):
        correlation_table(cells.groupby("replicate").head(2))
    with pytest.raises(ValueError, match="empty"):
        correlation_table(cells.iloc[:0])
    with pytest.raises(ValueError, match="pyarrow.Table or pandas.DataFrame"):
        correlation_table([1, 2, 3])
