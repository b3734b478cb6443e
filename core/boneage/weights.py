"""Sample weights that correct the training set's biases (thesis 6.3.3 and 6.3.5, SPEC.md §3).

- W(BA): 1 / f_BA(BA), f_BA a Gaussian KDE (scipy, Scott's bandwidth) of the train bone ages:
  rare bone ages weigh more, so that the model stops centring its predictions on the mode.
- W(DA): f_DA(BA - CA) ** -alpha, f_DA the KDE of the bone-age minus chronological-age offsets:
  patients far from their chronological age weigh more, against the model's anchoring on CA.
- W(BA,DA): f_{BA,DA}(BA, BA - CA) ** -alpha with the joint 2-D KDE (both biases at once).

Every weight vector is divided by its mean (N w_i / sum w): the average loss, hence the effective
learning rate, is the one of unweighted training (thesis 6.3.3). alpha = 1 for W(DA) is the
6.3.3 scheme applied to BA - CA; the thesis uses alpha = 0.5 for W(DA) and W(BA,DA).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import gaussian_kde

Weighting = Literal["none", "BA", "DA", "BA_DA"]
WEIGHTINGS: tuple[str, ...] = ("none", "BA", "DA", "BA_DA")
LABELS = {"none": "none", "BA": "W(BA)", "DA": "W(DA)", "BA_DA": "W(BA,DA)"}


def _finite(name: str, x) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).ravel()
    if arr.size < 2:
        raise ValueError(f"{name}: at least 2 training samples are needed for a KDE, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: {int(np.sum(~np.isfinite(arr)))} values are missing or not finite")
    return arr


def _normalise(w: np.ndarray) -> np.ndarray:
    return w * (len(w) / w.sum())


def sample_weights(
    kind: str,
    bone_age,
    chronological_age=None,
    alpha: float = 0.5,
) -> np.ndarray:
    """Per-sample weights of the training set (mean 1). Ages in months; CA needed for DA kinds."""
    if kind not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {kind!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    ba = _finite("bone ages", bone_age)
    if kind == "none":
        return np.ones_like(ba)
    if kind == "BA":
        return _normalise(1.0 / _density(ba))
    if chronological_age is None:
        raise ValueError(f"weighting {kind!r} needs the chronological ages of the training set")
    ca = _finite("chronological ages", chronological_age)
    if ca.shape != ba.shape:
        raise ValueError(f"{len(ba)} bone ages but {len(ca)} chronological ages")
    da = ba - ca
    density = _density(da) if kind == "DA" else _density(np.vstack([ba, da]))
    return _normalise(density**-alpha)


def _density(points: np.ndarray) -> np.ndarray:
    """The Gaussian KDE of `points` evaluated at the points themselves (floored to stay > 0)."""
    try:
        kde = gaussian_kde(points)
    except np.linalg.LinAlgError:
        raise ValueError("the KDE is singular: the training ages (or offsets) are all equal") from None
    density = kde(points)
    return np.maximum(density, np.finfo(np.float64).tiny)


def weights_summary(w: np.ndarray) -> dict:
    """Min, max, ratio and effective sample size (sum w)^2 / sum w^2 of a weight vector."""
    w = np.asarray(w, dtype=np.float64)
    return {
        "min": float(w.min()),
        "max": float(w.max()),
        "max_over_min": float(w.max() / w.min()),
        "effective_n": float(w.sum() ** 2 / np.sum(w**2)),
    }
