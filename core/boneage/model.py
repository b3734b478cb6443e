"""The bone-age network: a timm ConvNeXt backbone and a small regression head (thesis fig. 6.2b).

Features of the backbone (global-average pooled) -> [optionally concatenated with a linear map of
the normalised chronological age] -> FC(head_width) -> GELU -> FC(head_width) -> GELU -> FC(2):
one output for boys and one for girls, and the output of the patient's sex is used (instead of
embedding sex as an input). Outputs are normalised bone ages (train mean/SD), stored with the
model as buffers so that a checkpoint is self-contained.

Weights: random initialisation unless `pretrained` names a local checkpoint (ImageNet-22k
ConvNeXt, in timm's or the original FAIR key layout), read with safetensors or
torch.load(weights_only=True); nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from core.boneage.config import ModelConfig

BOY, GIRL = 0, 1  # output columns
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BoneAgeNet(nn.Module):
    def __init__(self, config: ModelConfig, use_ca: bool):
        super().__init__()
        self.use_ca = use_ca
        self.backbone = timm.create_model(
            config.backbone,
            pretrained=False,
            num_classes=0,
            drop_path_rate=config.drop_path,
            **config.backbone_args,
        )
        features = self.backbone.num_features
        self.ca_map = nn.Linear(1, config.ca_features) if use_ca else None
        width = config.head_width
        self.head = nn.Sequential(
            nn.Linear(features + (config.ca_features if use_ca else 0), width),
            nn.GELU(),
            nn.Linear(width, width),
            nn.GELU(),
            nn.Linear(width, 2),
        )
        # normalisation of inputs and targets, set from the training set by the trainer
        # grayscale replicated to RGB and normalised as the ImageNet backbone expects
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.register_buffer("target_mean", torch.tensor(0.0))
        self.register_buffer("target_std", torch.tensor(1.0))
        self.register_buffer("ca_mean", torch.tensor(0.0))
        self.register_buffer("ca_std", torch.tensor(1.0))

    def set_normalisation(self, target_mean, target_std, ca_mean=0.0, ca_std=1.0) -> None:
        for name, value in (
            ("target_mean", target_mean),
            ("target_std", target_std),
            ("ca_mean", ca_mean),
            ("ca_std", ca_std),
        ):
            getattr(self, name).fill_(float(value))

    def forward(
        self, images: torch.Tensor, male: torch.Tensor, ca: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Normalised bone age of each image. images: uint8 or float (N, 1, H, W) in [0, 255];
        male: bool (N,); ca: chronological ages in months (N,), needed when the model uses CA."""
        x = images.float() / 255.0
        x = (x.expand(-1, 3, -1, -1) - self.pixel_mean) / self.pixel_std
        features = self.backbone(x)
        if self.use_ca:
            if ca is None:
                raise ValueError("this model takes the chronological age as input: pass ca")
            z = ((ca.float() - self.ca_mean) / self.ca_std).unsqueeze(1).to(features.dtype)
            features = torch.cat([features, self.ca_map(z)], dim=1)
        both = self.head(features)
        return torch.where(male.bool(), both[:, BOY], both[:, GIRL])

    def to_months(self, normalised: torch.Tensor) -> torch.Tensor:
        return normalised.float() * self.target_std + self.target_mean

    def to_normalised(self, months: torch.Tensor) -> torch.Tensor:
        return (months.float() - self.target_mean) / self.target_std


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a local checkpoint, safely: safetensors, or torch.load(weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "model_ema"):  # common wrappers
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    return state


def load_backbone_weights(model: BoneAgeNet, path: str | Path) -> dict:
    """Load ImageNet weights into the backbone (classifier dropped); returns what matched."""
    from timm.models.convnext import checkpoint_filter_fn

    state = read_state_dict(path)
    state = checkpoint_filter_fn(state, model.backbone)
    own = model.backbone.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"{path}: no tensor matches the {type(model.backbone).__name__} backbone")
    missing = sorted(set(own) - set(usable))
    model.backbone.load_state_dict(usable, strict=False)
    return {"loaded": len(usable), "missing": missing, "ignored": sorted(set(state) - set(usable))}
