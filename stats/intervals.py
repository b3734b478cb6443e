"""t-based confidence interval of a mean over replicates (seeds, super-nets, readers).

Assumption: the replicate values are independent draws from a roughly normal distribution, so
(mean - mu) / (s / sqrt n) follows Student's t with n - 1 degrees of freedom.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats as _st

from stats._checks import as_vector, check_level


class MeanCI(NamedTuple):
    """Mean of n values, its t-based interval [ci_low, ci_high] and the sample SD (ddof=1)."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    sd: float


def mean_ci(x, level: float = 0.95) -> MeanCI:
    """Mean and mean +- t_{n-1, (1+level)/2} * s / sqrt(n). One value: the mean with NaN bounds."""
    level = check_level(level)
    values = as_vector(x, "x")
    n = len(values)
    mean = float(values.mean())
    if n < 2:
        return MeanCI(mean, float("nan"), float("nan"), n, float("nan"))
    sd = float(values.std(ddof=1))
    half = float(_st.t.ppf(0.5 + level / 2, n - 1)) * sd / np.sqrt(n)
    return MeanCI(mean, mean - half, mean + half, n, sd)
