"""Decoding, RHPE hand splitting at the gap between the hands, letterboxing."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.boneage.images import crop_hand, letterbox, load_hand, read_gray, split_column


def test_split_at_the_dark_gap_not_the_middle():
    img = np.full((50, 100), 120, dtype=np.uint8)
    img[:, 58:61] = 3  # the gap between the two hands is right of the middle
    assert 58 <= split_column(img) <= 60
    left, right = crop_hand(img, "left"), crop_hand(img, "right")
    assert left.shape[1] + right.shape[1] == 100
    assert left.shape[1] >= 58


def test_letterbox_keeps_aspect_ratio_and_centres():
    img = np.full((40, 20), 200, dtype=np.uint8)  # portrait 2:1
    out = letterbox(img, 32)
    assert out.shape == (32, 32)
    cols = np.nonzero(out.max(axis=0) > 0)[0]
    rows = np.nonzero(out.max(axis=1) > 0)[0]
    assert len(rows) == 32 and len(cols) == 16  # height fills, width halves: ratio kept
    assert cols[0] == 8  # centred
    assert out[:, :8].max() == 0  # black padding


def test_sixteen_bit_and_rgb_images_are_read_as_8_bit(tmp_path):
    arr16 = (np.arange(64 * 32).reshape(32, 64) * 16).astype(np.uint16)
    Image.fromarray(arr16).save(tmp_path / "x16.png")
    gray = read_gray(str(tmp_path / "x16.png"))
    assert gray.dtype == np.uint8 and gray.min() == 0 and gray.max() == 255
    Image.fromarray(np.zeros((10, 12, 3), dtype=np.uint8) + 50).save(tmp_path / "rgb.png")
    assert read_gray(str(tmp_path / "rgb.png")).shape == (10, 12)
    assert load_hand(str(tmp_path / "x16.png"), "left", 24).shape == (24, 24)
