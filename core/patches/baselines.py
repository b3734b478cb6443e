"""The hand-designed baselines of table 5.1 (timm): ResNet-152, DenseNet-161, EfficientNet-b0/b1.

Built with a 2-class head. ImageNet weights come from a local file when given (`.safetensors`,
or a torch checkpoint read with `torch.load(weights_only=True)`; a `state_dict`/`model` entry is
unwrapped); the checkpoint's classifier is dropped (its shape is ImageNet's), every other weight
must match the architecture. Without a file the network starts from timm's random initialisation
and the table says so. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

LABELS = {
    "resnet152": "ResNet-152",
    "densenet161": "DenseNet-161",
    "efficientnet_b0": "EfficientNet-b0",
    "efficientnet_b1": "EfficientNet-b1",
}


def label(name: str) -> str:
    return LABELS.get(name, name)


def check_name(name: str) -> str:
    if name in LABELS:  # the table's own: no need to import timm (slow) to validate a config
        return name
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown timm model {name!r} (table 5.1 uses {', '.join(LABELS)})")
    return name


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a local checkpoint, never unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"baseline checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable weights-only torch checkpoint ({err})") from None
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def build_baseline(
    name: str, n_classes: int = 2, checkpoint: str | Path | None = None, dropout: float = 0.0, seed: int = 0
) -> nn.Module:
    """A timm network with an n-class head, with local ImageNet weights when `checkpoint` is given."""
    import timm

    check_name(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model(name, pretrained=False, num_classes=n_classes, drop_rate=dropout)
    if checkpoint is None:
        return model
    state = read_state_dict(checkpoint)
    head = model.default_cfg.get("classifier", "fc")
    own = model.state_dict()

    def is_head(k: str) -> bool:
        return k == head or k.startswith(head + ".")

    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in state if k in own and own[k].shape != state[k].shape and not is_head(k)]
    missing = [k for k in own if k not in state and not is_head(k)]
    if unexpected or mismatched or missing:
        raise ValueError(
            f"{checkpoint}: does not fit timm's {name} (missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"other shapes {mismatched[:3]})"
        )
    model.load_state_dict({k: v for k, v in state.items() if own[k].shape == v.shape}, strict=False)
    return model
