"""OFA sub-networks with inherited weights, checkpoints read safely, and counting against known models."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from core.models.ofa_subnet import (
    build_subnet,
    build_supernet,
    count_macs,
    count_parameters,
    subnet_size,
    supernet_identity,
)
from search.ofa_space import OFA_REFERENCE, decode


@pytest.fixture(scope="module")
def supernet():
    return build_supernet(None, seed=0)


@pytest.mark.parametrize(
    ("name", "weights"),
    [("resnet18", "ResNet18_Weights"), ("mobilenet_v3_large", "MobileNet_V3_Large_Weights")],
)
def test_counts_match_torchvisions_published_figures(name, weights):
    """torchvision documents each model's parameters and GFLOPS (multiply-adds at 224x224)."""
    import torchvision

    meta = getattr(torchvision.models, weights).IMAGENET1K_V1.meta
    model = getattr(torchvision.models, name)()
    assert count_parameters(model) == meta["num_params"]
    assert count_macs(model, 224) / 1e9 == pytest.approx(meta["_ops"], abs=0.0005)


def test_reference_net_counts_match_ofas_published_name_and_counter(supernet):
    """`flops@595M_top1@80.0_finetune@75` at its 236x236 input, with OFA's ImageNet head."""
    from ofa.utils.pytorch_utils import count_net_flops

    supernet.set_active_subnet(**decode(OFA_REFERENCE.genome))
    net = supernet.get_active_subnet(preserve_weight=True)
    macs = count_macs(net, OFA_REFERENCE.resolution)
    assert round(macs / 1e6) == 595
    assert macs == pytest.approx(count_net_flops(net, (1, 3, 236, 236)), rel=1e-6)  # OFA's counter (float32)
    params, macs_2 = subnet_size(*(tuple(v) for v in decode(OFA_REFERENCE.genome).values()), 236)
    head = 1536 * 1000 + 1000 - (1536 * 2 + 2)  # ImageNet head -> fracture head
    assert params == count_parameters(net) - head
    assert macs_2 == macs - 1536 * 998


def test_subnet_inherits_the_supernets_weights(supernet):
    arch = decode(OFA_REFERENCE.genome)
    net = build_subnet(supernet, arch, n_classes=2)
    assert net.classifier.linear.out_features == 2
    net.classifier = copy.deepcopy(supernet.classifier)  # same head: the same function as the supernet path
    supernet.set_active_subnet(**arch)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    supernet.eval(), net.eval()
    with torch.no_grad():
        assert torch.allclose(supernet(x), net(x), atol=1e-5)
    a = build_subnet(supernet, arch, head_seed=7).classifier.linear.weight
    assert torch.equal(a, build_subnet(supernet, arch, head_seed=7).classifier.linear.weight)


def test_checkpoints_are_read_as_weights_only(supernet, tmp_path):
    path = tmp_path / "ofa.pth"
    torch.save({"state_dict": supernet.state_dict()}, path)
    loaded = build_supernet(str(path), seed=123)  # a different random init, then the file's weights
    assert all(
        torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), supernet.state_dict().values())
    )
    assert supernet_identity(str(path)).startswith("sha256:")
    assert supernet_identity(None, 4) == "random-init:seed4"

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    unsafe = tmp_path / "unsafe.pth"
    unsafe.write_bytes(pickle.dumps({"state_dict": Payload()}, protocol=2))
    with pytest.raises(ValueError, match="not a readable weights-only torch checkpoint"):
        build_supernet(str(unsafe))
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(ValueError, match="not a checkpoint of ofa_mbv3"):
        build_supernet(str(wrong))
    with pytest.raises(FileNotFoundError):
        build_supernet(str(tmp_path / "missing.pth"))


def test_baselines_load_local_weights_without_their_imagenet_head(tmp_path):
    import timm

    from core.patches.baselines import build_baseline

    imagenet = timm.create_model("efficientnet_b0", num_classes=1000)
    path = tmp_path / "b0.pth"
    torch.save({"state_dict": imagenet.state_dict()}, path)
    model = build_baseline("efficientnet_b0", 2, path)
    assert model.get_classifier().out_features == 2
    assert torch.equal(model.conv_stem.weight, imagenet.conv_stem.weight)
    assert count_parameters(model) == 4_010_110  # table 5.1: 4.0M
    other = tmp_path / "r18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), other)
    with pytest.raises(ValueError, match="does not fit timm's efficientnet_b0"):
        build_baseline("efficientnet_b0", 2, other)
    with pytest.raises(ValueError, match="unknown timm model"):
        build_baseline("resnet9000")
