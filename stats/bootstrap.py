"""Bootstrap confidence intervals (percentile and BCa), vectorised, seeded, optionally by group.

A resample is a row of unit indices drawn with replacement (a unit is an observation, or a whole
group such as a patient or a study). The built-in statistics are computed for a block of resamples
at once, by gathering per-unit sums (mean, MAE, sensitivity, specificity, differences) or by a
weighted median over the sorted values, never with a Python loop per resample: 10,000 resamples
of 1,000 values take well under a second.

Assumptions: observations (or groups, when `groups=` is given) are independent and identically
distributed; the bootstrap distribution of the statistic approximates its sampling distribution,
which needs moderate samples (a few dozen units) and a statistic that is a smooth function of the
data (the median of tiny samples is a known weak case).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from stats._checks import as_bool_vector, as_vector, check_choice, check_level, same_length

STATISTICS = ("mean", "median", "mae", "sensitivity", "specificity", "diff", "paired_diff")
METHODS = ("bca", "percentile")
_BLOCK_CELLS = 1 << 20  # resamples x units held in memory at once (8 MiB of float64)


@dataclass(frozen=True)
class BootstrapResult:
    """A bootstrap interval: `estimate` is the statistic on the data, [`low`, `high`] the interval.

    `n_resamples` counts the resamples that gave a finite value (a resample with no positive case
    has no sensitivity, for instance); `standard_error` is the SD of the bootstrap distribution.
    """

    estimate: float
    low: float
    high: float
    level: float
    method: str
    statistic: str
    n_resamples: int
    standard_error: float


# --------------------------------------------------------------------------- units and resampling


class _Units:
    """The resampling units of one sample: observation i belongs to unit codes[i] (0..n_units-1)."""

    def __init__(self, n_obs: int, groups, name: str):
        if groups is None:
            self.codes = np.arange(n_obs)
            self.n_units = n_obs
            self.grouped = False
            return
        labels = np.asarray(groups)
        if labels.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {labels.shape}")
        if len(labels) != n_obs:
            raise ValueError(
                f"{name} must have one label per observation: {len(labels)} labels, {n_obs} values"
            )
        _, self.codes = np.unique(labels, return_inverse=True)
        self.codes = self.codes.ravel()
        self.n_units = int(self.codes.max()) + 1
        self.grouped = True
        if self.n_units < 2:
            raise ValueError(f"{name} has a single group; resampling groups needs at least 2")

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """(size, n_units) indices of the units drawn, with replacement, in each of `size` resamples."""
        return rng.integers(0, self.n_units, size=(size, self.n_units))

    def counts(self, draws: np.ndarray) -> np.ndarray:
        """(size, n_units) integer counts: how often each unit appears in each resample."""
        size, g = draws.shape
        flat = (draws + (np.arange(size) * g)[:, None]).ravel()
        return np.bincount(flat, minlength=size * g).reshape(size, g)


# --------------------------------------------------------------------------- statistics on draws


class _Ratio:
    """sum(w * u) / sum(w * v) over observations: mean, MAE, sensitivity, specificity, paired mean."""

    def __init__(self, u: np.ndarray, v: np.ndarray, units: _Units):
        self.units = units
        self.u = np.bincount(units.codes, weights=u, minlength=units.n_units)
        self.v = np.bincount(units.codes, weights=v, minlength=units.n_units)
        # Equal denominators (the mean without groups): every resample has the same total.
        self.v_const = float(self.v[0]) if np.all(self.v == self.v[0]) else None

    def point(self) -> float:
        total = self.v.sum()
        return float(self.u.sum() / total) if total > 0 else float("nan")

    def from_draws(self, draws: np.ndarray) -> np.ndarray:
        numerator = self.u[draws].sum(axis=1)
        if self.v_const is not None:
            return numerator / (self.v_const * draws.shape[1])
        with np.errstate(invalid="ignore", divide="ignore"):
            return numerator / self.v[draws].sum(axis=1)

    def jackknife(self) -> np.ndarray:
        """The statistic with each unit left out in turn (n_units values)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.u.sum() - self.u) / (self.v.sum() - self.v)


class _Median:
    """Median of the resampled observations, from counts: a weighted median over sorted values.

    Without groups the units are relabelled as positions in the sorted data (resampling does not
    depend on the labels), so the counts of a resample are already in sorted order.
    """

    def __init__(self, x: np.ndarray, units: _Units):
        self.units = units
        order = np.argsort(x, kind="stable")
        self.sorted = x[order]
        self.sorted_codes = units.codes[order] if units.grouped else np.arange(len(x))

    def point(self) -> float:
        return float(np.median(self.sorted))

    def _weighted(self, weights: np.ndarray) -> np.ndarray:
        """Median of each row's multiset: weights[r, i] copies of sorted[i] (integer weights)."""
        cum = np.cumsum(weights, axis=1)
        total = cum[:, -1]
        rank_lo = (total + 1) // 2  # the two middle ranks (equal when the total is odd)
        rank_hi = total // 2 + 1
        k_lo = np.minimum((cum < rank_lo[:, None]).sum(axis=1), len(self.sorted) - 1)
        k_hi = np.minimum((cum < rank_hi[:, None]).sum(axis=1), len(self.sorted) - 1)
        return (self.sorted[k_lo] + self.sorted[k_hi]) / 2

    def from_draws(self, draws: np.ndarray) -> np.ndarray:
        counts = self.units.counts(draws)
        return self._weighted(counts[:, self.sorted_codes] if self.units.grouped else counts)

    def jackknife(self) -> np.ndarray:
        g, n = self.units.n_units, len(self.sorted)
        out = np.empty(g)
        step = max(1, _BLOCK_CELLS // n)
        for start in range(0, g, step):
            left_out = np.arange(start, min(g, start + step))
            weights = (self.sorted_codes[None, :] != left_out[:, None]).astype(np.int64)
            out[start : start + len(left_out)] = self._weighted(weights)
        return out


class _Callable:
    """A user function f(*arrays, axis=-1) of arrays resampled jointly (rows kept together)."""

    def __init__(self, fn: Callable, arrays: list[np.ndarray], units: _Units):
        self.fn, self.arrays, self.units = fn, arrays, units
        self.n = len(arrays[0])

    def _call(self, samples: list[np.ndarray], expected: int) -> np.ndarray:
        out = np.asarray(self.fn(*samples, axis=-1), dtype=np.float64)
        if out.shape != (expected,):
            raise ValueError(
                "a callable statistic must take the samples and axis=-1 and return one value per resample;"
                f" got shape {out.shape} for {expected} resamples"
            )
        return out

    def point(self) -> float:
        out = np.asarray(self.fn(*self.arrays, axis=-1), dtype=np.float64)
        if out.ndim != 0:
            raise ValueError(f"a callable statistic must return a scalar on the data, got shape {out.shape}")
        return float(out)

    def from_draws(self, draws: np.ndarray) -> np.ndarray:
        if not self.units.grouped:
            # Every resample has n observations: gather them into one (resamples, n) block.
            return self._call([a[draws] for a in self.arrays], len(draws))
        # Resamples of whole groups differ in length: one call per resample (documented as slower).
        weights = self.units.counts(draws)[:, self.units.codes].astype(np.int64)
        out = np.empty(len(weights))
        for row, w in enumerate(weights):
            index = np.repeat(np.arange(self.n), w)
            out[row] = float(np.asarray(self.fn(*[a[index] for a in self.arrays], axis=-1)))
        return out

    def jackknife(self) -> np.ndarray:
        g = self.units.n_units
        if not self.units.grouped:
            out = np.empty(g)
            base = np.arange(self.n - 1)
            step = max(1, _BLOCK_CELLS // self.n)
            for start in range(0, g, step):
                left = np.arange(start, min(g, start + step))
                index = base[None, :] + (base[None, :] >= left[:, None])
                out[start : start + len(left)] = self._call([a[index] for a in self.arrays], len(left))
            return out
        return np.array(
            [
                float(np.asarray(self.fn(*[a[self.units.codes != k] for a in self.arrays], axis=-1)))
                for k in range(g)
            ]
        )


# --------------------------------------------------------------------------- building the plan


def _resolve_rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _pair(x, statistic: str) -> tuple:
    if not isinstance(x, (tuple, list)) or len(x) != 2 or np.ndim(x[0]) == 0 or np.ndim(x[1]) == 0:
        raise ValueError(f"statistic {statistic!r} needs x = (a, b), two arrays")
    return x[0], x[1]


def _group_pair(groups, statistic: str):
    if groups is None:
        return None, None
    if not isinstance(groups, (tuple, list)) or len(groups) != 2:
        raise ValueError(
            f"statistic {statistic!r} takes groups=(groups_a, groups_b), one label array per sample"
        )
    return groups[0], groups[1]


def _build(x, statistic, groups) -> tuple[list, str]:
    """The samples to resample independently (one for all statistics but 'diff'), and a name."""
    if callable(statistic):
        arrays = list(x) if isinstance(x, (tuple, list)) else [x]
        arrays = [as_vector(a, f"x[{i}]") for i, a in enumerate(arrays)]
        for i, a in enumerate(arrays[1:], 1):
            same_length("x[0]", arrays[0], f"x[{i}]", a)
        units = _Units(len(arrays[0]), groups, "groups")
        return [_Callable(statistic, arrays, units)], getattr(statistic, "__name__", "callable")
    if not isinstance(statistic, str):
        raise ValueError(f"statistic must be a name or a callable, got {type(statistic).__name__}")
    check_choice(statistic, "statistic", STATISTICS)

    if statistic in ("mean", "median"):
        if isinstance(x, tuple) and len(x) == 2 and np.ndim(x[0]) > 0:
            raise ValueError(f"statistic {statistic!r} takes one array; use 'diff' or 'paired_diff' for two")
        values = as_vector(x, "x")
        units = _Units(len(values), groups, "groups")
        if statistic == "mean":
            return [_Ratio(values, np.ones_like(values), units)], statistic
        return [_Median(values, units)], statistic

    if statistic == "mae":
        if isinstance(x, (tuple, list)):
            pred, target = (as_vector(v, n) for v, n in zip(_pair(x, statistic), ("predicted", "target")))
            same_length("predicted", pred, "target", target)
            errors = np.abs(pred - target)
        else:
            errors = np.abs(as_vector(x, "x (errors)"))
        units = _Units(len(errors), groups, "groups")
        return [_Ratio(errors, np.ones_like(errors), units)], statistic

    if statistic in ("sensitivity", "specificity"):
        truth, call = _pair(x, statistic)
        truth, call = as_bool_vector(truth, "y_true"), as_bool_vector(call, "y_pred")
        same_length("y_true", truth, "y_pred", call)
        units = _Units(len(truth), groups, "groups")
        if statistic == "sensitivity":
            if not truth.any():
                raise ValueError("sensitivity is undefined: y_true has no positive case")
            return [_Ratio((truth & call).astype(float), truth.astype(float), units)], statistic
        if truth.all():
            raise ValueError("specificity is undefined: y_true has no negative case")
        return [_Ratio((~truth & ~call).astype(float), (~truth).astype(float), units)], statistic

    a, b = _pair(x, statistic)
    a, b = as_vector(a, "a"), as_vector(b, "b")
    if statistic == "paired_diff":
        same_length("a", a, "b", b)
        d = a - b
        return [_Ratio(d, np.ones_like(d), _Units(len(d), groups, "groups"))], statistic
    ga, gb = _group_pair(groups, statistic)
    return [
        _Ratio(a, np.ones_like(a), _Units(len(a), ga, "groups[0]")),
        _Ratio(b, np.ones_like(b), _Units(len(b), gb, "groups[1]")),
    ], statistic


def _combine(values: list) -> np.ndarray | float:
    """One sample: its statistic; two samples ('diff'): the first minus the second."""
    return values[0] if len(values) == 1 else values[0] - values[1]


def _distribution(parts: list, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    widest = max(len(p.units.codes) for p in parts)
    block = max(1, min(n_resamples, _BLOCK_CELLS // widest))
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        values = [p.from_draws(p.units.draw(rng, size)) for p in parts]
        out[start : start + size] = _combine(values)
    return out


# --------------------------------------------------------------------------- public functions


def bootstrap_distribution(
    x, statistic="mean", n_resamples: int = 10_000, seed=0, groups=None
) -> tuple[float, np.ndarray]:
    """The statistic on the data and its `n_resamples` bootstrap replicates (same rules as bootstrap_ci).

    Non-finite replicates (a resample without any positive case for sensitivity) are kept as NaN.
    """
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    parts, _ = _build(x, statistic, groups)
    estimate = float(_combine([p.point() for p in parts]))
    return estimate, _distribution(parts, int(n_resamples), _resolve_rng(seed))


def _acceleration(parts: list, estimate_parts: list[float]) -> float:
    """BCa acceleration from leave-one-unit-out jackknife values (Efron & Tibshirani 14.15, 15.36)."""
    num = den = 0.0
    for j, part in enumerate(parts):
        jack = part.jackknife()
        # One sample: the jackknife values; 'diff': sample j left out a unit at a time, the other whole.
        others = list(estimate_parts)
        others[j] = jack
        theta = np.asarray(_combine(others), dtype=np.float64)
        theta = theta[np.isfinite(theta)]
        n = float(len(theta))
        if n < 2:
            continue
        u = (n - 1) * (theta.mean() - theta)
        num += np.sum(u**3) / n**3
        den += np.sum(u**2) / n**2
    if den <= 0:
        return 0.0
    return float(num / (6.0 * den**1.5))


def bootstrap_ci(
    x,
    statistic: str | Callable = "mean",
    level: float = 0.95,
    method: str = "bca",
    n_resamples: int = 10_000,
    seed=0,
    groups=None,
) -> BootstrapResult:
    """Bootstrap confidence interval of a statistic, percentile or BCa, reproducible for a given seed.

    `statistic` and the matching `x`:
      - "mean", "median": x is one array;
      - "mae": x is the errors, or (predicted, target);
      - "sensitivity", "specificity": x is (y_true, y_pred), booleans or 0/1;
      - "diff": x is (a, b), independent samples resampled separately; estimate mean(a) - mean(b);
      - "paired_diff": x is (a, b) of equal length, pairs resampled together; estimate mean(a - b);
      - a callable f(*arrays, axis=-1) vectorised over the last axis, x one array or a tuple of equal
        length arrays resampled row-wise together.
    `groups` (one label per observation; for "diff", a pair of label arrays) makes the resampling
    unit a whole group, drawn with replacement with all its observations: use it when observations
    within a patient, a study or a seed are correlated. `seed` is an int, None or a Generator.
    Assumes independent units; BCa corrects for bias and skewness (Efron 1987) and is the default.
    """
    level = check_level(level)
    check_choice(method, "method", METHODS)
    if int(n_resamples) != n_resamples or n_resamples < 2:
        raise ValueError(f"n_resamples must be an integer >= 2, got {n_resamples!r}")
    parts, name = _build(x, statistic, groups)
    estimate_parts = [p.point() for p in parts]
    estimate = float(_combine(estimate_parts))
    if not np.isfinite(estimate):
        raise ValueError(f"statistic {name!r} is not finite on the data ({estimate})")
    dist = _distribution(parts, int(n_resamples), _resolve_rng(seed))
    dist = dist[np.isfinite(dist)]
    if len(dist) < 2:
        raise ValueError(f"statistic {name!r} is undefined on almost every resample; the data are too few")

    tail = (1.0 - level) / 2.0
    if method == "percentile":
        probs = np.array([tail, 1.0 - tail])
    else:
        b = len(dist)
        below = (np.count_nonzero(dist < estimate) + np.count_nonzero(dist <= estimate)) / (2.0 * b)
        z0 = ndtri(np.clip(below, 0.5 / b, 1.0 - 0.5 / b))
        a = _acceleration(parts, estimate_parts)
        z = ndtri(np.array([tail, 1.0 - tail]))
        probs = ndtr(z0 + (z0 + z) / (1.0 - a * (z0 + z)))
    low, high = np.quantile(dist, probs)
    return BootstrapResult(
        estimate=estimate,
        low=float(low),
        high=float(high),
        level=level,
        method=method,
        statistic=name,
        n_resamples=len(dist),
        standard_error=float(np.std(dist, ddof=1)),
    )
