"""Rank correlation between proxy and true scores, per replicate, summarised over replicates (table 4.3).

Assumptions: within a replicate (one super-net), cells are a random sample of the space; the
replicates are independent, and their correlations roughly normal, so the t-based 95% interval
over replicates applies (5 super-nets in the thesis). A replicate whose proxies are NaN, infinite
or constant (a super-net that failed to converge) carries no ranking information: it is excluded
and counted, as the asterisks of table 4.3 mark.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats as _st

from stats._checks import as_vector, check_choice, check_level, same_length
from stats._frames import to_arrow, to_pandas
from stats.intervals import mean_ci

METHODS = ("spearman", "kendall")
COLUMNS = ("space", "variant", "replicate", "proxy", "target")


def rank_correlation(proxy, target, method: str = "spearman") -> float:
    """Spearman's rho or Kendall's tau-b between two equal-length arrays (NaN if either is constant)."""
    check_choice(method, "method", METHODS)
    x, y = as_vector(proxy, "proxy", min_size=2), as_vector(target, "target", min_size=2)
    same_length("proxy", x, "target", y)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    if method == "spearman":
        return float(_st.spearmanr(x, y).statistic)
    return float(_st.kendalltau(x, y).statistic)


def replicate_correlations(table, method: str = "spearman") -> pa.Table:
    """One row per (space, variant, replicate): `correlation`, `n_cells`, `excluded` and `reason`.

    Input columns: space, variant, replicate, proxy, target (one row per evaluated cell).
    Excluded (correlation NaN): proxies with NaN/inf, or all equal. NaN targets, constant targets
    and replicates with fewer than 3 cells are errors in the input, not failed replicates.
    """
    check_choice(method, "method", METHODS)
    frame = to_pandas(table, COLUMNS, "correlation input")
    if len(frame) == 0:
        raise ValueError("correlation input is empty")
    keys = frame[["space", "variant", "replicate"]]
    if keys.isna().any().any():
        bad = [c for c in keys.columns if keys[c].isna().any()]
        raise ValueError(f"correlation input has missing values in key column(s) {', '.join(bad)}")
    rows = []
    for (space, variant, replicate), cells in frame.groupby(["space", "variant", "replicate"], sort=False):
        where = f"space={space!r}, variant={variant!r}, replicate={replicate!r}"
        proxy = cells["proxy"].to_numpy(dtype=np.float64)
        target = cells["target"].to_numpy(dtype=np.float64)
        if len(cells) < 3:
            raise ValueError(f"{where} has {len(cells)} cell(s); a rank correlation needs at least 3")
        if not np.all(np.isfinite(target)):
            raise ValueError(f"{where} has NaN or infinite target values")
        if np.ptp(target) == 0:
            raise ValueError(f"{where} has constant target values")
        reason = ""
        if not np.all(np.isfinite(proxy)):
            reason = f"{int(np.sum(~np.isfinite(proxy)))} NaN/inf proxies"
        elif np.ptp(proxy) == 0:
            reason = "constant proxies"
        rho = float("nan") if reason else rank_correlation(proxy, target, method)
        rows.append(
            {
                "space": space,
                "variant": variant,
                "replicate": replicate,
                "correlation": rho,
                "n_cells": len(cells),
                "excluded": bool(reason),
                "reason": reason,
            }
        )
    return to_arrow(pd.DataFrame(rows))


def correlation_table(table, method: str = "spearman", level: float = 0.95) -> pa.Table:
    """Mean rank correlation per (space, variant) with a t-based CI over its replicates (table 4.3).

    Input: an Arrow table or pandas frame with columns space, variant, replicate, proxy, target,
    one row per evaluated cell. Output, one row per (space, variant) in order of first appearance:
    space, variant, method, mean, ci_low, ci_high, sd, n (replicates used), excluded (replicates
    dropped because their proxies are NaN or constant) and excluded_replicates (their ids, comma
    separated). With one usable replicate the bounds are NaN; with none the mean is NaN too.
    """
    level = check_level(level)
    per_replicate = replicate_correlations(table, method).to_pandas()
    rows = []
    for (space, variant), reps in per_replicate.groupby(["space", "variant"], sort=False):
        used = reps.loc[~reps["excluded"], "correlation"].to_numpy()
        dropped = reps.loc[reps["excluded"], "replicate"].astype(str).tolist()
        if len(used):
            summary = mean_ci(used, level)
            mean, low, high, sd = summary.mean, summary.ci_low, summary.ci_high, summary.sd
        else:
            mean = low = high = sd = float("nan")
        rows.append(
            {
                "space": space,
                "variant": variant,
                "method": method,
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
                "sd": sd,
                "n": len(used),
                "excluded": len(dropped),
                "excluded_replicates": ",".join(dropped),
            }
        )
    return to_arrow(pd.DataFrame(rows))
