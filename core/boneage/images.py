"""Radiographs to model inputs: grayscale decoding, RHPE two-hand splitting, letterboxing.

Images are decoded with Pillow to 8-bit grayscale (16-bit PNGs are rescaled by their own range,
RGB is converted to luminance). An RHPE radiograph shows both hands side by side: it is cut at
the darkest column of its central part (the gap between the hands), not blindly at the middle.
Letterboxing resizes the longest side to the input size and pads the other with black, so the
hand keeps its aspect ratio (thesis 6.3.2: "resized to 600x600, keeping original aspect ratios").
"""

from __future__ import annotations

import numpy as np
from PIL import Image

CENTRE_BAND = (0.3, 0.7)  # where the gap between the two hands of an RHPE radiograph is searched


def read_gray(path: str) -> np.ndarray:
    """The image at `path` as a uint8 (H, W) array."""
    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(im, dtype=np.float64)
            lo, hi = float(arr.min()), float(arr.max())
            scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
            return scaled.round().astype(np.uint8)
        return np.asarray(im.convert("L"), dtype=np.uint8).copy()


def split_column(image: np.ndarray, band: tuple[float, float] = CENTRE_BAND) -> int:
    """Column between the two hands: the darkest column (smoothed) within the central band."""
    width = image.shape[1]
    lo, hi = int(band[0] * width), max(int(band[0] * width) + 1, int(band[1] * width))
    profile = image.astype(np.float64).mean(axis=0)
    k = max(1, width // 50)
    smooth = np.convolve(profile, np.ones(k) / k, mode="same")
    return lo + int(np.argmin(smooth[lo:hi]))


def crop_hand(image: np.ndarray, hand: str) -> np.ndarray:
    """The whole image ("full"), or its left / right hand for a two-hand radiograph."""
    if hand == "full":
        return image
    cut = split_column(image)
    if hand == "left":
        return image[:, :cut]
    if hand == "right":
        return image[:, cut:]
    raise ValueError(f"hand must be full, left or right, got {hand!r}")


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so the longest side is `size` (aspect kept), centred on a black size x size canvas."""
    h, w = image.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR), dtype=np.uint8)
    out = np.zeros((size, size), dtype=np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = resized
    return out


def load_hand(path: str, hand: str, size: int) -> np.ndarray:
    """One model input: decoded, cut to one hand when asked, letterboxed to size x size (uint8)."""
    return letterbox(crop_hand(read_gray(path), hand), size)
