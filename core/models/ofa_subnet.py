"""Once-for-All MobileNetV3 sub-networks with inherited weights, and counting their size.

The supernet is the `ofa` package's `OFAMobileNetV3` configured as `ofa_mbv3_d234_e346_k357_w1.2`
(width 1.2, kernels 3/5/7, expand ratios 3/4/6, depths 2/3/4); nothing is downloaded. A
candidate is cut out of it as OFA does: `set_active_subnet(ks, e, d)` then
`get_active_subnet(preserve_weight=True)`, a standalone `MobileNetV3` holding the supernet's
weights for that path (thesis 5.3.2: the supernet is the source of pre-trained weights). Its
ImageNet classifier is replaced by a new 2-class head (fracture / no fracture).

Weights: `checkpoint` is a local file of the supernet's ImageNet weights (OFA's released
`ofa_mbv3_d234_e346_k357_w1.2`, a dict with a `state_dict`, or a bare state dict), read with
`torch.load(weights_only=True)`. Without one, the documented fallback is a supernet initialised
at random with a fixed seed: every candidate then inherits the same random weights, which makes
the search run end to end but means "from scratch" (the • rows of table 5.1), not ImageNet
transfer. `supernet_identity` says which (the file's SHA-256, or the seed) and is part of every
candidate's key.

Counting: `count_parameters` (trainable) and `count_macs` (multiply-adds of one image: every
Conv2d and Linear, through forward hooks, the convention of torchvision's `_ops` and OFA's own
counter; batch norm, activations and pooling are not counted). Checked in the tests against
torchvision's published figures and OFA's `flops@595M` reference network.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

# ofa_mbv3_d234_e346_k357_w1.2 (the same choices as search.ofa_space, checked by the tests; core does
# not import search)
SUPERNET_ARGS = {
    "width_mult": 1.2,
    "ks_list": [3, 5, 7],
    "expand_ratio_list": [3, 4, 6],
    "depth_list": [2, 3, 4],
}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def supernet_identity(checkpoint: str | None, seed: int = 0) -> str:
    """'sha256:<hex>' of the checkpoint file, or 'random-init:seed<k>' for the fallback."""
    if checkpoint is None:
        return f"random-init:seed{seed}"
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"OFA supernet checkpoint not found: {path}")
    return f"sha256:{_file_sha256(path)}"


def build_supernet(checkpoint: str | None = None, seed: int = 0, n_classes: int = 1000, dropout: float = 0.1):
    """The OFA MobileNetV3 supernet: ImageNet weights from `checkpoint`, else seeded random ones."""
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = OFAMobileNetV3(n_classes=n_classes, dropout_rate=dropout, **SUPERNET_ARGS)
    if checkpoint is not None:
        load_supernet_weights(net, checkpoint)
    return net


def load_supernet_weights(net, checkpoint: str | Path) -> None:
    """Load a local OFA checkpoint (never unpickles code: weights_only=True)."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"OFA supernet checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - unreadable or unsafe file: say which
        raise ValueError(f"{path}: not a readable weights-only torch checkpoint ({err})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors (or a dict with 'state_dict')")
    try:
        net.load_state_dict(state)
    except (AssertionError, RuntimeError, ValueError) as err:
        raise ValueError(
            f"{path}: not a checkpoint of ofa_mbv3_d234_e346_k357_w1.2 "
            f"({type(err).__name__}: {str(err)[:300]})"
        ) from None


def new_head(in_features: int, n_classes: int, dropout: float, seed: int) -> nn.Module:
    """A freshly initialised classifier (seeded, so the same candidate starts the same way)."""
    from ofa.utils.layers import LinearLayer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LinearLayer(in_features, n_classes, dropout_rate=dropout)


def build_subnet(
    supernet, arch: dict, n_classes: int = 2, dropout: float = 0.1, head_seed: int = 0
) -> nn.Module:
    """The standalone sub-network `arch` ({'ks': 20, 'e': 20, 'd': 5}, as `search.ofa_space.decode`
    gives) with the supernet's weights and a new n-class head.

    The supernet's active configuration is changed (and left so)."""
    supernet.set_active_subnet(ks=list(arch["ks"]), e=list(arch["e"]), d=list(arch["d"]))
    subnet = supernet.get_active_subnet(preserve_weight=True)
    subnet.classifier = new_head(subnet.classifier.in_features, n_classes, dropout, head_seed)
    return subnet


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def count_macs(model: nn.Module, input_size: int | tuple[int, int], channels: int = 3) -> int:
    """Multiply-adds of one forward pass on one image: Conv2d (output elements x in/groups x kernel)
    and Linear (output elements x in_features), measured with forward hooks on a zero image."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    total = 0

    def conv(m: nn.Conv2d, _inputs, out):
        nonlocal total
        total += (
            out.numel() // out.shape[0] * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        )

    def linear(m: nn.Linear, _inputs, out):
        nonlocal total
        total += out.numel() // out.shape[0] * m.in_features

    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(conv))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, channels, h, w, device=device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return int(total)


@lru_cache(maxsize=1)
def _counting_supernet():
    return build_supernet(None, seed=0)


@lru_cache(maxsize=4096)
def subnet_size(ks: tuple, e: tuple, d: tuple, input_size: int, n_classes: int = 2) -> tuple[int, int]:
    """(parameters, multiply-adds) of a sub-network with an n-class head (weights do not matter)."""
    net = build_subnet(_counting_supernet(), {"ks": ks, "e": e, "d": d}, n_classes)
    return count_parameters(net), count_macs(net, input_size)
