"""The digits split: sizes, stratification, a partition of the data, same on every call."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits

from core.data.digits import digits_splits


def test_split_is_fixed_stratified_and_a_partition():
    a, b = digits_splits(), digits_splits()
    assert {k: len(v.y) for k, v in a.items()} == {"train": 1078, "validation": 359, "test": 360}
    for name in a:
        assert torch.equal(a[name].x, b[name].x) and torch.equal(a[name].y, b[name].y)
    per_class = np.bincount(load_digits().target, minlength=10)
    train = torch.bincount(a["train"].y, minlength=10).numpy()
    val = torch.bincount(a["validation"].y, minlength=10).numpy()
    assert (train == np.round(0.6 * per_class)).all() and (val == np.round(0.2 * per_class)).all()
    every = torch.cat([a[k].x for k in a]).reshape(1797, -1).numpy()
    images = (load_digits().images.reshape(1797, -1) / 16.0).astype(np.float32)
    assert sorted(map(bytes, every)) == sorted(map(bytes, images))  # each image exactly once
    assert a["train"].x.shape[1:] == (1, 8, 8) and float(a["train"].x.max()) == 1.0
