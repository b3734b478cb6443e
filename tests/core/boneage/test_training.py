"""Trainer: it learns on the synthetic set, resumes exactly, accumulates gradients exactly,
weights the loss, averages the TTA views and reads checkpoints safely."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import checkpoint
from core.boneage.config import PRESETS, ModelConfig, SyntheticConfig, TrainConfig
from core.boneage.records import load_rsna, split_patients
from core.boneage.synthetic import synthetic_sources, write_synthetic
from core.boneage.training import Trainer
from core.config import deep_merge

EMBEDDED = PRESETS.table["embedded"]
MODEL = ModelConfig(**EMBEDDED["model"])


def _train_config(**changes) -> TrainConfig:
    return TrainConfig(**deep_merge(EMBEDDED["train"], {"image_size": 32} | changes))


@pytest.fixture(scope="module")
def small_split(tmp_path_factory):
    root = write_synthetic(
        SyntheticConfig(n_rsna=600, n_rhpe=4, n_clinical=8, image_size=40, seed=11),
        tmp_path_factory.mktemp("learn") / "synthetic",
    )
    frame = load_rsna(synthetic_sources(root)[0])
    return split_patients(frame, 0.2, seed=0)


@pytest.fixture(scope="module")
def tiny_split(small_split):
    train, val = small_split
    return train.iloc[:24].reset_index(drop=True), val.iloc[:8].reset_index(drop=True)


def _params(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_resumed_training_ends_with_the_same_weights(tiny_split, tmp_path):
    train, val = tiny_split
    cfg = _train_config(epochs=3, batch_size=8)
    straight = Trainer(MODEL, cfg, train, val, log=lambda s: None)
    straight.fit()

    first = Trainer(MODEL, cfg, train, val, log=lambda s: None)
    first.train_epoch()
    path = checkpoint.save(tmp_path / "ckpt" / "last.pt", first.state_dict())
    assert not list(path.parent.glob("*.tmp-*"))
    resumed = Trainer(MODEL, cfg, train, val, log=lambda s: None)
    torch.manual_seed(999)  # a fresh process: different global RNG state
    resumed.load_state_dict(checkpoint.load(path))
    assert resumed.epoch == 1
    resumed.fit()
    a, b = _params(straight), _params(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(straight.ema.module.head[-1].weight, resumed.ema.module.head[-1].weight)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]


def test_images_decoded_on_the_fly_train_like_cached_ones(tiny_split):
    train, val = tiny_split
    cfg = _train_config(epochs=1, batch_size=8)
    cached = Trainer(MODEL, cfg.model_copy(update={"cache_images": True}), train, val, log=lambda s: None)
    lazy = Trainer(MODEL, cfg.model_copy(update={"cache_images": False}), train, val, log=lambda s: None)
    assert cached.train_images.cached is not None and lazy.train_images.cached is None
    cached.train_epoch()
    lazy.train_epoch()
    a, b = _params(cached), _params(lazy)
    assert all(torch.equal(a[k], b[k]) for k in a)
    np.testing.assert_allclose(cached.predict(val), lazy.predict(val), rtol=1e-6)


def test_checkpoint_of_another_recipe_is_refused(tiny_split):
    train, val = tiny_split
    a = Trainer(MODEL, _train_config(epochs=2, batch_size=8), train, val, log=lambda s: None)
    b = Trainer(MODEL, _train_config(epochs=2, batch_size=8, lr=1e-4), train, val, log=lambda s: None)
    with pytest.raises(ValueError, match="different model/recipe"):
        b.load_state_dict(checkpoint.from_bytes(checkpoint.to_bytes(a.state_dict())))


def test_gradient_accumulation_matches_the_full_batch(tiny_split):
    train, _ = tiny_split
    cfg = _train_config(epochs=1, batch_size=8, augment={"erasing": 0.0})
    full = Trainer(MODEL, cfg, train, log=lambda s: None)
    full.train_epoch()
    acc = Trainer(MODEL, cfg.model_copy(update={"micro_batch_size": 3}), train, log=lambda s: None)
    acc.train_epoch()
    a, b = _params(full), _params(acc)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_zero_weight_samples_do_not_train(tiny_split):
    train, _ = tiny_split
    cfg = _train_config(epochs=1, batch_size=24, ema_decay=None)
    w = np.ones(len(train))
    w[12:] = 0.0
    shifted = train.copy()
    shifted.loc[12:, "bone_age"] = 1.0  # labels of zero-weight samples are changed
    a = Trainer(MODEL, cfg, train, weights=w, log=lambda s: None)
    b = Trainer(MODEL, cfg, shifted, weights=w, log=lambda s: None)
    b.model.set_normalisation(a.model.target_mean, a.model.target_std)  # same target scaling
    a.train_epoch()
    b.train_epoch()
    pa, pb = _params(a), _params(b)
    assert all(torch.allclose(pa[k], pb[k], atol=1e-6) for k in pa)
    c = Trainer(MODEL, cfg, shifted, log=lambda s: None)  # unweighted: the labels do matter
    c.model.set_normalisation(a.model.target_mean, a.model.target_std)
    c.train_epoch()
    pc = _params(c)
    assert not all(torch.allclose(pa[k], pc[k], atol=1e-6) for k in pa)


def test_tta_prediction_is_the_mean_of_the_four_flips(tiny_split):
    train, val = tiny_split
    trainer = Trainer(MODEL, _train_config(epochs=1, batch_size=8), train, val, log=lambda s: None)
    trainer.train_epoch()
    tta = trainer.predict(val, tta=True)
    model = trainer.inference_model.eval()
    x = trainer.val_images.cached
    male = trainer.val_labels.male
    with torch.no_grad():
        views = [x, x.flip(-1), x.flip(-2), x.flip(-1).flip(-2)]
        manual = model.to_months(torch.stack([model(v, male) for v in views]).mean(0)).numpy()
    np.testing.assert_allclose(tta, manual, rtol=1e-5)
    plain = trainer.predict(val, tta=False)
    assert not np.allclose(tta, plain)


def test_ca_model_needs_chronological_ages(tiny_split):
    train, _ = tiny_split
    with pytest.raises(ValueError, match="RSNA has none"):
        Trainer(MODEL, _train_config(epochs=1), train, use_ca=True, log=lambda s: None)


@pytest.mark.parametrize("dataset", ["rsna", "rhpe"])
def test_embedded_default_learns(dataset, tmp_path):
    """The job's embedded default exactly (synthetic set and preset), one variant per dataset."""
    from core.boneage.records import load_clinical, load_rhpe

    root = write_synthetic(SyntheticConfig(), tmp_path / "synthetic")
    rsna, rhpe, clinical = synthetic_sources(root)
    frame = load_rsna(rsna) if dataset == "rsna" else load_rhpe(rhpe)
    train, val = split_patients(frame, 0.1, seed=0)
    trainer = Trainer(MODEL, TrainConfig(**EMBEDDED["train"]), train, val, log=print)
    history = trainer.fit()
    mean_mae = float(np.mean(np.abs(val["bone_age"] - train["bone_age"].mean())))
    final = trainer.val_mae(tta=True)
    clin = load_clinical(clinical)
    clin_mae = float(np.mean(np.abs(trainer.predict(clin) - clin["bone_age"])))
    clin_mean = float(np.mean(np.abs(clin["bone_age"] - train["bone_age"].mean())))
    print(
        f"{dataset}: val MAE {history[0]['val_mae']:.2f} -> {final:.2f} "
        f"(predicting the mean {mean_mae:.2f}); "
        f"clinical {clin_mae:.2f} (mean {clin_mean:.2f})"
    )
    assert final < 0.5 * mean_mae
    assert clin_mae < 0.6 * clin_mean
