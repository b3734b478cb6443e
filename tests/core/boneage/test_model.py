"""BoneAgeNet: sex-selected output, CA input, safe loading of local backbone weights."""

from __future__ import annotations

import pytest
import torch

from core.boneage.config import ModelConfig
from core.boneage.model import BoneAgeNet, load_backbone_weights, read_state_dict

TINY = ModelConfig(
    backbone="convnext_atto",
    backbone_args={"depths": [1, 1, 1, 1], "dims": [8, 16, 32, 64]},
    head_width=16,
    ca_features=4,
    drop_path=0.0,
)


def test_output_of_the_patients_sex_is_used():
    torch.manual_seed(0)
    model = BoneAgeNet(TINY, use_ca=False).eval()
    with torch.no_grad():
        model.head[-1].weight.zero_()
        model.head[-1].bias.copy_(torch.tensor([3.0, -5.0]))  # boy output 3, girl output -5
        x = torch.randint(0, 255, (4, 1, 32, 32), dtype=torch.uint8)
        out = model(x, torch.tensor([True, False, True, False]))
    assert out.tolist() == [3.0, -5.0, 3.0, -5.0]


def test_chronological_age_changes_the_prediction_and_is_required():
    torch.manual_seed(0)
    model = BoneAgeNet(TINY, use_ca=True).eval()
    model.set_normalisation(120, 40, ca_mean=110, ca_std=35)
    x = torch.randint(0, 255, (2, 1, 32, 32), dtype=torch.uint8)
    male = torch.tensor([True, True])
    with torch.no_grad():
        a = model(x, male, torch.tensor([60.0, 60.0]))
        b = model(x, male, torch.tensor([200.0, 200.0]))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="pass ca"):
        model(x, male)
    assert model.to_months(torch.tensor([1.0])).item() == pytest.approx(160.0)


def test_thesis_model_is_convnext_small_with_the_thesis_head():
    model = BoneAgeNet(ModelConfig(), use_ca=True).eval()  # the defaults are the thesis recipe
    assert type(model.backbone).__name__ == "ConvNeXt" and model.backbone.num_features == 768
    widths = [m.out_features for m in model.head if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 256, 2]
    assert model.head[0].in_features == 768 + 32  # backbone features + the mapped CA
    rates = [
        b.drop_path.drop_prob
        for s in model.backbone.stages
        for b in s.blocks
        if b.drop_path.__class__.__name__ == "DropPath"
    ]
    assert max(rates) == pytest.approx(0.1)  # stochastic depth up to 0.1
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 64, 64, dtype=torch.uint8), torch.tensor([True]), torch.tensor([100.0]))
    assert out.shape == (1,)


@pytest.mark.parametrize("fmt", ["pth", "safetensors", "wrapped"])
def test_local_backbone_weights_are_loaded(tmp_path, fmt):
    torch.manual_seed(1)
    source = BoneAgeNet(TINY, use_ca=False)
    state = {k: v.clone() for k, v in source.backbone.state_dict().items()}
    path = tmp_path / f"ckpt.{'safetensors' if fmt == 'safetensors' else 'pth'}"
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save({"model": state} if fmt == "wrapped" else state, path)
    torch.manual_seed(2)
    target = BoneAgeNet(TINY, use_ca=False)
    info = load_backbone_weights(target, path)
    assert info["loaded"] == len(state)
    for k, v in target.backbone.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_checkpoints_are_never_unpickled_unsafely(tmp_path):
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"model": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError):
        read_state_dict(path)
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "absent.pth")
    torch.save({"x": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="no tensor matches"):
        load_backbone_weights(BoneAgeNet(TINY, use_ca=False), tmp_path / "other.pth")
