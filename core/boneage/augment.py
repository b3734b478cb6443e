"""Training augmentations of the thesis (6.3.2) on whole batches, on the batch's device, seeded.

Horizontal and vertical flips, rotations by 90/180/270 degrees, a random rotation + shift +
scale (one affine warp), and random erasing (Zhong et al. 2020: a rectangle of 2-33% of the
image, aspect 0.3-3.3, filled with noise). Every random number comes from the caller's
torch.Generator, so a resumed epoch sees exactly the same augmentations. Inputs and outputs are
pixel values in [0, 255], shape (N, 1, S, S).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from core.boneage.config import AugmentConfig


def _mask(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def flip_rotate(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    h = _mask(n, cfg.hflip, gen)
    v = _mask(n, cfg.vflip, gen)
    rotate = _mask(n, cfg.rot90, gen)
    turns = torch.randint(1, 4, (n,), generator=gen)
    if not (h.any() or v.any() or rotate.any()):
        return x
    x = x.clone()  # only the selected images are touched
    for mask, dims in ((h, (-1,)), (v, (-2,))):
        sel = mask.nonzero().flatten().to(x.device)
        if len(sel):
            x[sel] = x[sel].flip(dims)
    if x.shape[-1] == x.shape[-2]:
        for k in (1, 2, 3):
            sel = (rotate & (turns == k)).nonzero().flatten().to(x.device)
            if len(sel):
                x[sel] = torch.rot90(x[sel], k, dims=(-2, -1))
    return x


def affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Random rotation (+-rotate_degrees), shift (+-shift of the size) and zoom, one warp."""
    n = x.shape[0]
    apply = _mask(n, cfg.affine, gen)
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(cfg.rotate_degrees)
    zoom = 1 + (torch.rand(n, generator=gen) * 2 - 1) * cfg.scale
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * cfg.shift * 2  # grid units span 2
    if not apply.any():
        return x
    idx = apply.nonzero().flatten()
    cos, sin = torch.cos(angle[idx]) / zoom[idx], torch.sin(angle[idx]) / zoom[idx]
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[idx, 0]], 1), torch.stack([sin, cos, shift[idx, 1]], 1)], 1
    ).to(x.device, x.dtype)
    sub = x[idx.to(x.device)]
    grid = F.affine_grid(theta, list(sub.shape), align_corners=False)
    warped = F.grid_sample(sub, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = x.clone()
    out[idx.to(x.device)] = warped
    return out


def random_erasing(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Erase one random rectangle per selected image, filled with uniform noise in [0, 255]."""
    n, _, hgt, wid = x.shape
    apply = _mask(n, p, gen)
    area = torch.empty(n).uniform_(0.02, 0.33, generator=gen) * hgt * wid
    log_ratio = torch.empty(n).uniform_(math.log(0.3), math.log(1 / 0.3), generator=gen)
    ratio = torch.exp(log_ratio)
    eh = torch.sqrt(area * ratio).round().clamp(1, hgt).long()
    ew = torch.sqrt(area / ratio).round().clamp(1, wid).long()
    top = (torch.rand(n, generator=gen) * (hgt - eh + 1).float()).long()
    left = (torch.rand(n, generator=gen) * (wid - ew + 1).float()).long()
    idx = apply.nonzero().flatten()
    if not len(idx):
        return x
    noise = torch.rand((len(idx), 1, hgt, wid), generator=gen) * 255.0  # only for the erased images
    rows = torch.arange(hgt).view(1, hgt, 1)
    cols = torch.arange(wid).view(1, 1, wid)
    t, le, h_, w_ = (
        top[idx].view(-1, 1, 1),
        left[idx].view(-1, 1, 1),
        eh[idx].view(-1, 1, 1),
        ew[idx].view(-1, 1, 1),
    )
    box = ((rows >= t) & (rows < t + h_) & (cols >= le) & (cols < le + w_)).unsqueeze(1)
    out = x.clone()
    sel = idx.to(x.device)
    out[sel] = torch.where(box.to(x.device), noise.to(x.device, x.dtype), x[sel])
    return out


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """All training augmentations in the thesis' order; float pixels in [0, 255] out."""
    x = x.float()
    x = flip_rotate(x, cfg, gen)
    x = affine(x, cfg, gen)
    if cfg.erasing > 0:
        x = random_erasing(x, cfg.erasing, gen)
    return x


def tta_views(x: torch.Tensor) -> list[torch.Tensor]:
    """Test-time views: identity, horizontal flip, vertical flip, both (thesis 6.3.2)."""
    return [x, x.flip(-1), x.flip(-2), x.flip(-1).flip(-2)]
