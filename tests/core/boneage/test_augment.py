"""Batch augmentations: seeded, each transformation doing what it says."""

from __future__ import annotations

import torch

from core.boneage.augment import affine, augment, flip_rotate, random_erasing, tta_views
from core.boneage.config import AugmentConfig

OFF = dict(hflip=0, vflip=0, rot90=0, affine=0, erasing=0)


def _batch(n=6, size=16):
    return torch.arange(n * size * size, dtype=torch.float32).reshape(n, 1, size, size) % 251


def test_same_generator_same_augmentations():
    x, cfg = _batch(), AugmentConfig()
    a = augment(x, cfg, torch.Generator().manual_seed(5))
    b = augment(x, cfg, torch.Generator().manual_seed(5))
    c = augment(x, cfg, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 255


def test_flips_and_rotations_with_probability_one():
    x = _batch()
    g = torch.Generator().manual_seed(0)
    assert torch.equal(flip_rotate(x, AugmentConfig(**OFF | {"hflip": 1}), g), x.flip(-1))
    assert torch.equal(flip_rotate(x, AugmentConfig(**OFF | {"vflip": 1}), g), x.flip(-2))
    rotated = flip_rotate(x, AugmentConfig(**OFF | {"rot90": 1}), g)
    for i in range(len(x)):  # every image is one of its three non-trivial rotations
        assert any(torch.equal(rotated[i], torch.rot90(x[i], k, dims=(-2, -1))) for k in (1, 2, 3))
    assert torch.equal(flip_rotate(x, AugmentConfig(**OFF), g), x)


def test_affine_identity_parameters_change_nothing_and_real_ones_do():
    x = _batch()
    g = torch.Generator().manual_seed(0)
    same = affine(x, AugmentConfig(**OFF | {"affine": 1, "rotate_degrees": 0, "shift": 0, "scale": 0}), g)
    assert torch.allclose(same, x, atol=1e-3)
    moved = affine(x, AugmentConfig(**OFF | {"affine": 1, "rotate_degrees": 30}), g)
    assert not torch.allclose(moved, x, atol=1.0)


def test_random_erasing_replaces_one_rectangle():
    x = torch.full((4, 1, 20, 20), -1.0)  # noise is >= 0, so erased pixels are the non-negative ones
    out = random_erasing(x, 1.0, torch.Generator().manual_seed(1))
    for img in out[:, 0]:
        rows, cols = torch.nonzero(img >= 0, as_tuple=True)
        assert len(rows) > 0
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert len(rows) == h * w  # a full rectangle
        assert 0.02 * 400 * 0.5 <= len(rows) <= 0.33 * 400 * 1.5
    assert torch.equal(random_erasing(x, 0.0, torch.Generator().manual_seed(1)), x)


def test_tta_views_are_the_four_flips():
    x = _batch(2)
    views = tta_views(x)
    assert len(views) == 4
    assert torch.equal(views[3], x.flip(-1).flip(-2))
