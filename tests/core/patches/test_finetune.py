"""The fine-tuning recipe: schedule, EMA, batches, batch-norm re-estimation, learning, divergence,
and a trainer restored from its checkpoint that continues exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from core import checkpoint
from core.ema import EMA
from core.patches.config import FinetuneRecipe
from core.patches.dataset import normalise
from core.patches.finetune import (
    PatchClassifierTrainer,
    cosine_lr,
    epoch_batches,
    finetune,
    split_aufroc,
)

SMALL = [2] * 5 + [3] * 40  # the smallest OFA network


@pytest.fixture(scope="module")
def supernet():
    from core.models.ofa_subnet import build_supernet

    return build_supernet(None, seed=0)


def small_net(supernet, seed=0):
    from core.models.ofa_subnet import build_subnet
    from search.ofa_space import decode

    return build_subnet(supernet, decode(SMALL), head_seed=seed)


def test_recipe_defaults_are_the_thesis():
    r = FinetuneRecipe()
    assert (r.epochs, r.lr, r.momentum, r.batch_size, r.weight_decay, r.ema_decay) == (
        5,
        0.02,
        0.9,
        128,
        1e-4,
        0.99,
    )


def test_cosine_schedule():
    assert cosine_lr(0.02, 0, 100) == pytest.approx(0.02)
    assert cosine_lr(0.02, 50, 100) == pytest.approx(0.01)
    assert cosine_lr(0.02, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert cosine_lr(0.02, 25, 100) == pytest.approx(0.01 * (1 + math.cos(math.pi / 4)))


def test_epoch_batches():
    g = torch.Generator().manual_seed(0)
    batches = epoch_batches(10, 4, g)
    assert [len(b) for b in batches] == [4, 4]  # the partial batch of 2 is dropped
    assert len(set(np.concatenate(batches).tolist())) == 8
    assert [len(b) for b in epoch_batches(3, 4, g)] == [3]  # smaller than a batch: all at once
    again = epoch_batches(10, 4, torch.Generator().manual_seed(0))
    assert all((a == b).all() for a, b in zip(batches, again))


def test_ema_update_and_warmup():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = EMA(model, decay=0.5, warmup=False, buffers="copy")
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update(model)
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 2.0))
    warm = EMA(nn.Linear(2, 1, bias=False), decay=0.99, warmup=True, buffers="copy")
    with torch.no_grad():
        warm.module.weight.fill_(1.0)
        model.weight.fill_(12.0)
    warm.update(model)  # d = min(0.99, 2/11)
    d = 2 / 11
    assert torch.allclose(warm.module.weight, torch.full((1, 2), d * 1 + (1 - d) * 12))


def test_bn_recalibration_uses_the_statistics_of_training_patches(supernet, tiny_data):
    net = small_net(supernet)
    recipe = FinetuneRecipe(bn_recalibration=64, eval_batch_size=64)
    trainer = PatchClassifierTrainer(net, recipe, tiny_data)
    used = trainer.recalibrate_bn(trainer.eval_model)
    assert used == 64
    split = tiny_data.split("train")
    rows = torch.randperm(len(split), generator=torch.Generator().manual_seed(recipe.seed)).numpy()[:64]
    x = normalise(torch.from_numpy(split.images[rows]))
    model = trainer.eval_model
    with torch.no_grad():
        y = model.first_conv.conv(x)
    assert torch.allclose(model.first_conv.bn.running_mean, y.mean(dim=(0, 2, 3)), atol=1e-4)
    assert torch.allclose(model.first_conv.bn.running_var, y.var(dim=(0, 2, 3), unbiased=True), rtol=1e-3)
    assert model.first_conv.bn.momentum == pytest.approx(0.1) and not model.training


def test_training_learns_the_patches(supernet, tiny_data):
    """The loss falls and the (EMA, recalibrated) model ranks training positives above negatives."""
    from sklearn.metrics import roc_auc_score

    recipe = FinetuneRecipe(epochs=4, batch_size=32, seed=0)
    trainer = PatchClassifierTrainer(small_net(supernet), recipe, tiny_data)
    history = trainer.fit()
    assert len(history) == 4 and history[-1]["loss"] < 0.75 * history[0]["loss"]
    assert trainer.steps == 4 * (len(tiny_data.split("train").train_index) // 32)
    aufroc, scores = trainer.evaluate(("train", "val"))
    train = tiny_data.split("train")
    keep = train.train_index
    assert roc_auc_score(train.frame["train_label"].to_numpy()[keep], scores["train"][keep]) > 0.8
    assert aufroc["val"] == pytest.approx(split_aufroc(tiny_data.split("val"), scores["val"]))
    assert ((scores["val"] >= 0) & (scores["val"] <= 1)).all()


def test_divergence_is_reported_not_raised(supernet, tiny_data):
    result = finetune(small_net(supernet), FinetuneRecipe(epochs=2, batch_size=32, lr=1e6), tiny_data)
    assert result.diverged and result.aufroc == {"val": 0.0}
    assert len(result.history) == 1


def test_a_restored_trainer_continues_as_the_uninterrupted_one(supernet, tiny_data):
    """Two epochs, a checkpoint (core.checkpoint bytes, weights_only), a fresh trainer restored from
    it and a third epoch: the same weights, EMA and history as three epochs in one go."""
    recipe = FinetuneRecipe(epochs=3, batch_size=32, seed=1)
    whole = PatchClassifierTrainer(small_net(supernet), recipe, tiny_data)
    assert (whole.position, whole.total) == (0, 3)
    whole.fit()
    first = PatchClassifierTrainer(small_net(supernet), recipe, tiny_data)
    first.step()
    first.step()
    blob = checkpoint.to_bytes(first.state_dict())
    resumed = PatchClassifierTrainer(small_net(supernet), recipe, tiny_data)
    resumed.load_state_dict(checkpoint.from_bytes(blob))
    assert resumed.position == 2
    resumed.fit()
    assert resumed.position == resumed.total == 3 and resumed.steps == whole.steps
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(whole.ema.module.state_dict().values(), resumed.ema.module.state_dict().values()):
        assert torch.equal(a, b)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
