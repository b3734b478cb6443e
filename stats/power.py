"""Power analysis for t-tests (statsmodels' TTestIndPower and TTestPower): how many runs to launch.

Assumptions: the comparison will be a t-test on roughly normal values; for two groups, Student's
test with a common variance (`effect_size` is Cohen's d with the pooled SD); with one group
(n2=None) a one-sample or paired test (`effect_size` is mean / SD of the differences).
`alternative`: 'two-sided', or 'greater' / 'less' (statsmodels' 'larger' / 'smaller' are accepted)
for a one-sided test in the direction of the sign of the effect.

Thesis case (4.3.3), as statsmodels computes it: with 100 baseline runs and d = 0.5, the second
group needs 47 runs for power 0.8 two-sided (34 one-sided); 25 runs against 100 detect d >= 0.631
two-sided (0.559 one-sided) with power 0.8, and have power 0.60 two-sided (0.72 one-sided) for
d = 0.5. So "25 runs for a medium effect" holds for d of about 0.63, not for d = 0.5.
"""

from __future__ import annotations

import math

from stats._checks import check_alpha, check_alternative, check_fraction

_SM_ALTERNATIVE = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}
_MAX_RUNS = 10_000_000


def _check_n(n, name: str, minimum: int) -> float:
    try:
        value = float(n)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of runs, got {n!r}") from None
    if not value >= minimum or not math.isfinite(value):
        raise ValueError(f"{name} must be at least {minimum}, got {n!r}")
    return value


def _check_power(power: float) -> float:
    return check_fraction(power, "power")


def _check_effect(effect_size) -> float:
    try:
        value = float(effect_size)
    except (TypeError, ValueError):
        raise ValueError(f"effect_size must be a number (Cohen's d), got {effect_size!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"effect_size must be finite, got {effect_size!r}")
    return value


def _power(d: float, n1: float, n2: float | None, alpha: float, alternative: str) -> float:
    from statsmodels.stats.power import TTestIndPower, TTestPower

    alt = _SM_ALTERNATIVE[alternative]
    if n2 is None:
        result = float(TTestPower().power(d, nobs=n1, alpha=alpha, alternative=alt))
        scale = math.sqrt(n1)
    else:
        result = float(TTestIndPower().power(d, nobs1=n1, ratio=n2 / n1, alpha=alpha, alternative=alt))
        scale = math.sqrt(n1 * n2 / (n1 + n2))
    if math.isnan(result):  # the noncentral t underflows for huge effects: normal limit instead
        from scipy.stats import norm

        signed = {"two-sided": abs(d), "greater": d, "less": -d}[alternative]
        z = norm.ppf(1 - alpha / (2 if alternative == "two-sided" else 1))
        result = float(norm.cdf(signed * scale - z))
    return result


def power(effect_size, n1, n2=None, alpha: float = 0.05, alternative: str = "two-sided") -> float:
    """Probability that the t-test at level alpha rejects when the true effect is `effect_size`.

    Two groups of n1 and n2 runs (unequal sizes allowed), or n2=None for a paired / one-sample test
    of n1 pairs.
    """
    d = _check_effect(effect_size)
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    n1 = _check_n(n1, "n1", 2)
    n2 = None if n2 is None else _check_n(n2, "n2", 2)
    return _power(d, n1, n2, alpha, alternative)


def runs_needed(
    effect_size,
    n_other=None,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: str = "two-sided",
) -> int:
    """Smallest number of runs n giving at least `power` against a group of `n_other` runs.

    n_other=None: number of pairs for a paired / one-sample test. With a fixed other group the power
    is bounded however large n grows; a target beyond that bound is a ValueError that says so.
    For 'two-sided' only |effect_size| matters; a one-sided test needs an effect in its direction.
    """
    d = _check_effect(effect_size)
    alpha = check_alpha(alpha)
    target = _check_power(power)
    alternative = check_alternative(alternative)
    other = None if n_other is None else _check_n(n_other, "n_other", 2)
    if d == 0 or (alternative == "greater" and d < 0) or (alternative == "less" and d > 0):
        raise ValueError(
            f"effect_size {d} can never be detected by a {alternative!r} test: no number of runs reaches "
            f"power {target}"
        )

    def reach(n: int) -> bool:
        return _power(d, float(n), other, alpha, alternative) >= target

    if not reach(_MAX_RUNS):
        bound = _power(d, float(_MAX_RUNS), other, alpha, alternative)
        raise ValueError(
            f"power {target} is out of reach against {n_other} other runs: even {_MAX_RUNS:,} runs give "
            f"{bound:.3f}; add runs to the other group"
        )
    lo, hi = 2, 2  # smallest n with reach(n): exponential search, then bisection
    while not reach(hi):
        lo, hi = hi, hi * 2
    if reach(lo):
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if reach(mid):
            hi = mid
        else:
            lo = mid
    return hi


def min_detectable_effect(
    n1, n2=None, alpha: float = 0.05, power: float = 0.8, alternative: str = "two-sided"
) -> float:
    """Smallest |Cohen's d| that n1 runs against n2 runs (n2=None: n1 pairs) detect with `power`."""
    from statsmodels.stats.power import TTestIndPower, TTestPower

    alpha = check_alpha(alpha)
    target = _check_power(power)
    alternative = check_alternative(alternative)
    n1 = _check_n(n1, "n1", 2)
    n2 = None if n2 is None else _check_n(n2, "n2", 2)
    # Solve in the positive direction: by symmetry 'less' needs the same |d| as 'greater'.
    alt = _SM_ALTERNATIVE["greater" if alternative == "less" else alternative]
    if n2 is None:
        d = TTestPower().solve_power(None, nobs=n1, alpha=alpha, power=target, alternative=alt)
    else:
        d = TTestIndPower().solve_power(
            None, nobs1=n1, ratio=n2 / n1, alpha=alpha, power=target, alternative=alt
        )
    return abs(float(d))
