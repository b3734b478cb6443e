"""Patches as inputs: decoded in memory or read from their files, the same tensors either way."""

from __future__ import annotations

import numpy as np
import torch

from core.patches.dataset import MEAN, STD, iterate_batches, normalise, prepare, random_flips, read_patch


def test_in_memory_and_from_files_agree(tiny_patches, tiny_data):
    lazy = prepare(tiny_patches, 32, in_memory=False, verbose=False)
    assert not lazy.in_memory and lazy.split("train").images is None
    split_mem, split_disk = tiny_data.split("val"), lazy.split("val")
    batches = [np.array([0, 3, 5]), np.array([7, 1])]
    for workers in (0, 1):
        got = list(iterate_batches(split_disk, batches, 32, workers))
        want = list(iterate_batches(split_mem, batches, 32))
        assert [g.shape for g in got] == [(3, 3, 32, 32), (2, 3, 32, 32)]
        assert all(torch.equal(a, b) for a, b in zip(got, want))
    assert lazy.identity == tiny_data.identity and lazy.split("val").n_images == split_mem.n_images


def test_patches_are_rgb_resized_and_normalised(tiny_patches):
    path = tiny_patches.frame["path"].iloc[0]
    x = read_patch(path, 48)
    assert x.shape == (3, 48, 48) and x.dtype == np.uint8 and (x[0] == x[1]).all()  # grayscale -> RGB
    batch = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    out = normalise(batch)
    assert torch.allclose(out[0, :, 0, 0], (1 - torch.tensor(MEAN)) / torch.tensor(STD))


def test_flips_are_seeded_and_only_flip():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).view(2, 3, 4, 4)
    a = random_flips(x, torch.Generator().manual_seed(0))
    b = random_flips(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    for i in range(2):
        views = [x[i], x[i].flip(-1), x[i].flip(-2), x[i].flip(-1).flip(-2)]
        assert any(torch.equal(a[i], v) for v in views)
