"""Training augmentations of radiographs with their instance masks, driven by a torch.Generator.

Flips, a random affine (rotation, translation, scaling) and brightness / contrast jitter, as in
the thesis (resizing is the model's multi-scale input size). Image and masks move together;
after an affine the boxes are recomputed from the masks and instances pushed out of the image
are dropped. Every random draw comes from the generator passed in, so a sample is a function of
its seed (training resumes exactly).
"""

from __future__ import annotations

import torch
from torchvision.ops import masks_to_boxes
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

MIN_MASK_PIXELS = 4


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return float(low + (high - low) * torch.rand((), generator=generator))


def augment(
    image: torch.Tensor, masks: torch.Tensor, boxes: torch.Tensor, config, generator: torch.Generator
):
    """image (C, H, W) float in [0, 1], masks (n, H, W) uint8, boxes (n, 4); returns the three
    transformed. `config` carries the DetectorConfig augmentation keys."""
    _, h, w = image.shape
    if torch.rand((), generator=generator) < config.hflip_prob:
        image, masks = image.flip(-1), masks.flip(-1)
        boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], dim=1)
    if torch.rand((), generator=generator) < config.vflip_prob:
        image, masks = image.flip(-2), masks.flip(-2)
        boxes = torch.stack([boxes[:, 0], h - boxes[:, 3], boxes[:, 2], h - boxes[:, 1]], dim=1)
    lo, hi = config.scale_range
    affine = config.rotation_degrees > 0 or config.translate > 0 or lo != 1 or hi != 1
    if affine:
        angle = _uniform(generator, -config.rotation_degrees, config.rotation_degrees)
        dx = _uniform(generator, -config.translate, config.translate) * w
        dy = _uniform(generator, -config.translate, config.translate) * h
        scale = _uniform(generator, lo, hi)
        image = TF.affine(image, angle, [dx, dy], scale, [0.0, 0.0], InterpolationMode.BILINEAR)
        if len(masks):
            masks = TF.affine(masks, angle, [dx, dy], scale, [0.0, 0.0], InterpolationMode.NEAREST)
            keep = masks.flatten(1).sum(1) >= MIN_MASK_PIXELS
            masks = masks[keep]
            boxes = masks_to_boxes(masks).to(boxes.dtype) if len(masks) else boxes[:0]
            boxes[:, 2:] += 1.0  # pixel indices to box corners
    if config.brightness or config.contrast:
        c = _uniform(generator, 1 - config.contrast, 1 + config.contrast)
        b = _uniform(generator, -config.brightness, config.brightness)
        mean = image.mean()
        image = ((image - mean) * c + mean + b).clamp(0, 1)
    return image, masks, boxes
