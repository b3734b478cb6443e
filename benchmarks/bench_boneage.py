"""Bone-age input pipeline speed: batch augmentation and TTA against per-image baselines.

1. Augmentation (flips, 90-degree rotations, rotate/shift/scale, random erasing) of a batch of
   32 images: core.boneage.augment.augment (one vectorised pass per batch, one affine warp)
   against the usual per-image torchvision.transforms.v2 pipeline in a loop (same transforms,
   same probabilities; other random draws, so the outputs differ but are of the same kind).
2. TTA inference of the embedded model: the four flips as four batched forward passes against
   a loop over images (four forward passes of batch 1 each); the predictions must agree.
Prints absolute times, the ratios and the training speed (images/s) of the embedded preset.
"""

from __future__ import annotations

import numpy as np
import torch
from _timing import best_time

from core.boneage.augment import augment, tta_views
from core.boneage.config import PRESETS, AugmentConfig, ModelConfig
from core.boneage.model import BoneAgeNet

BATCH = 32


def torchvision_pipeline(cfg: AugmentConfig):
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.RandomHorizontalFlip(cfg.hflip),
            v2.RandomVerticalFlip(cfg.vflip),
            v2.RandomApply([v2.RandomChoice([v2.RandomRotation((d, d)) for d in (90, 180, 270)])], cfg.rot90),
            v2.RandomApply(
                [
                    v2.RandomAffine(
                        cfg.rotate_degrees,
                        translate=(cfg.shift, cfg.shift),
                        scale=(1 - cfg.scale, 1 + cfg.scale),
                    )
                ],
                cfg.affine,
            ),
            v2.RandomErasing(cfg.erasing, value="random"),
        ]
    )


def main() -> None:
    torch.set_num_threads(1)
    cfg = AugmentConfig()  # the thesis' augmentations
    pipeline = torchvision_pipeline(cfg)
    for size in (64, 256):
        x = torch.randint(0, 256, (BATCH, 1, size, size), dtype=torch.uint8)
        gen = torch.Generator().manual_seed(0)
        t_batch, out = best_time(lambda x=x, gen=gen: augment(x, cfg, gen), 5)
        t_loop, _ = best_time(lambda x=x: torch.stack([pipeline(img.float()) for img in x]), 3)
        assert out.shape == x.shape
        print(
            f"augment {BATCH} images {size}x{size}: batch {t_batch * 1e3:.1f} ms   "
            f"per-image torchvision {t_loop * 1e3:.1f} ms   ratio {t_loop / t_batch:.1f}x"
        )

    torch.manual_seed(0)
    model = BoneAgeNet(ModelConfig(**PRESETS.table["embedded"]["model"]), use_ca=False).eval()
    x = torch.randint(0, 256, (BATCH, 1, 64, 64), dtype=torch.uint8)
    male = torch.rand(BATCH) < 0.5

    @torch.no_grad()
    def batched():
        return torch.stack([model(v, male) for v in tta_views(x)]).mean(0)

    @torch.no_grad()
    def looped():
        return torch.stack(
            [
                torch.stack([model(v, male[i : i + 1]) for v in tta_views(x[i : i + 1])]).mean(0)[0]
                for i in range(BATCH)
            ]
        )

    t_b, pb = best_time(batched, 5)
    t_l, pl = best_time(looped, 3)
    assert np.allclose(pb.numpy(), pl.numpy(), atol=1e-4)
    print(
        f"TTA (4 flips) of {BATCH} images, embedded model: batched {t_b * 1e3:.1f} ms   "
        f"per image {t_l * 1e3:.1f} ms   ratio {t_l / t_b:.1f}x"
    )

    model.train()
    opt = torch.optim.AdamW(model.parameters(), 2e-3)
    y = torch.randn(BATCH)
    gen = torch.Generator().manual_seed(1)
    aug = AugmentConfig(**PRESETS.table["embedded"]["train"]["augment"])

    def step():
        opt.zero_grad()
        loss = (model(augment(x, aug, gen), male) - y).abs().mean()
        loss.backward()
        opt.step()

    t_step, _ = best_time(step, 5)
    print(f"embedded preset training step (batch {BATCH}, 64x64, 1 thread): {BATCH / t_step:.0f} images/s")


if __name__ == "__main__":
    main()
