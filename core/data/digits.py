"""scikit-learn's digits (1,797 8x8 images, shipped with the package) with a fixed split.

The embedded default dataset of the NB-101 mini-benchmark: no download, small enough to
train thousands of cells on a laptop CPU.
"""

from __future__ import annotations

import numpy as np
import torch

from core.data.images import Split

SPLIT_SEED = 0
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)  # train / validation / test


def digits_splits(seed: int = SPLIT_SEED) -> dict[str, Split]:
    """Stratified train/validation/test split of the digits ((N, 1, 8, 8) in [0, 1]), the same
    on every machine."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0)[:, None]
    y = data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_train = int(round(SPLIT_FRACTIONS[0] * len(idx)))
        n_val = int(round(SPLIT_FRACTIONS[1] * len(idx)))
        parts["train"] += idx[:n_train].tolist()
        parts["validation"] += idx[n_train : n_train + n_val].tolist()
        parts["test"] += idx[n_train + n_val :].tolist()
    return {
        name: Split(torch.from_numpy(x[np.sort(idx)]), torch.from_numpy(y[np.sort(idx)]))
        for name, idx in parts.items()
    }
