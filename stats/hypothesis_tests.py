"""Comparing two groups of runs: Student / Welch / paired t-tests with the difference, its CI and d.

Assumptions: values within each group are independent and roughly normal (or the groups are large
enough for the mean to be); the pooled test also assumes equal variances (Welch does not); the
paired test assumes a[i] and b[i] belong together (same reader, same patient) and that the
differences are roughly normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

from stats._checks import as_vector, check_alternative, check_level, same_length
from stats.effect_size import prob_superiority as _prob_superiority


@dataclass(frozen=True)
class CompareResult:
    """a versus b. `mean_diff` = mean(a) - mean(b) (for paired data also the mean of a - b).

    [`ci_low`, `ci_high`]: two-sided t interval of the difference at `level`, whatever the
    `alternative` of the p-value (tables report a 95% CI beside a one-sided p).
    `statistic`, `df`, `pvalue`: the t-test. `cohen_d` = mean_diff / `pooled_sd` (also for paired
    data, so d means the same thing in every table), `prob_superiority` = Phi(d / sqrt 2).
    """

    mean_diff: float
    ci_low: float
    ci_high: float
    pooled_sd: float
    statistic: float
    pvalue: float
    cohen_d: float
    prob_superiority: float
    df: float
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    sd_a: float
    sd_b: float
    test: str
    alternative: str
    level: float


def _pvalue(t: float, df: float, alternative: str) -> float:
    if np.isnan(t):
        return float("nan")
    if alternative == "greater":
        return float(_st.t.sf(t, df))
    if alternative == "less":
        return float(_st.t.cdf(t, df))
    return float(min(1.0, 2.0 * _st.t.sf(abs(t), df)))


def compare(
    a,
    b,
    paired: bool = False,
    equal_var: bool = True,
    alternative: str = "two-sided",
    level: float = 0.95,
) -> CompareResult:
    """t-test of mean(a) - mean(b) with the difference, its CI, the pooled SD, Cohen's d and P(a > b).

    paired=False, equal_var=True: Student's two-sample test with the pooled variance (the thesis'
    "independent t-test"); equal_var=False: Welch's test with Satterthwaite's degrees of freedom;
    paired=True: the one-sample test of a - b (equal_var is then ignored). `alternative` is
    'two-sided', 'greater' (H1: mean(a) > mean(b)) or 'less'. Each group needs two values or more.
    Matches scipy.stats.ttest_ind / ttest_rel; constant data give NaN t, p and d.
    """
    alternative = check_alternative(alternative)
    level = check_level(level)
    a, b = as_vector(a, "a", min_size=2), as_vector(b, "b", min_size=2)
    na, nb = len(a), len(b)
    mean_a, mean_b = float(a.mean()), float(b.mean())
    var_a, var_b = float(a.var(ddof=1)), float(b.var(ddof=1))
    sp = float(np.sqrt(((na - 1) * var_a + (nb - 1) * var_b) / (na + nb - 2)))

    if paired:
        same_length("a", a, "b", b)
        diff = a - b
        mean_diff = float(diff.mean())
        se = float(diff.std(ddof=1) / np.sqrt(na))
        df = float(na - 1)
        test = "paired"
    else:
        mean_diff = mean_a - mean_b
        if equal_var:
            se = sp * float(np.sqrt(1.0 / na + 1.0 / nb))
            df = float(na + nb - 2)
            test = "pooled"
        else:
            qa, qb = var_a / na, var_b / nb
            se = float(np.sqrt(qa + qb))
            with np.errstate(invalid="ignore", divide="ignore"):
                df = float((qa + qb) ** 2 / (qa**2 / (na - 1) + qb**2 / (nb - 1)))
            test = "welch"

    with np.errstate(invalid="ignore", divide="ignore"):
        t = float(np.float64(mean_diff) / np.float64(se))
    half = float(_st.t.ppf(0.5 + level / 2, df)) * se if np.isfinite(df) else float("nan")
    d = mean_diff / sp if sp > 0 else float("nan")
    return CompareResult(
        mean_diff=mean_diff,
        ci_low=mean_diff - half,
        ci_high=mean_diff + half,
        pooled_sd=sp,
        statistic=t,
        pvalue=_pvalue(t, df, alternative),
        cohen_d=d,
        prob_superiority=float("nan") if np.isnan(d) else _prob_superiority(d),
        df=df,
        n_a=na,
        n_b=nb,
        mean_a=mean_a,
        mean_b=mean_b,
        sd_a=float(np.sqrt(var_a)),
        sd_b=float(np.sqrt(var_b)),
        test=test,
        alternative=alternative,
        level=level,
    )
