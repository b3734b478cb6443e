"""The embedded synthetic set: real layouts, bone age visible in the image, atomic writing."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from core.boneage.config import SyntheticConfig
from core.boneage.records import load_clinical, load_rhpe, load_rsna
from core.boneage.reference import pathological
from core.boneage.synthetic import draw_labels, render_hand, write_synthetic


def test_written_in_the_real_layouts(tiny_synthetic):
    root, rsna, rhpe, clinical = tiny_synthetic
    assert (root / "manifest.json").exists()
    assert not list(root.parent.glob("*.tmp-*"))  # nothing half-written left
    r = load_rsna(rsna)
    assert len(r) == 40 and r["chronological_age"].isna().all()
    h = load_rhpe(rhpe)
    assert len(h) == 24 and h["patient_id"].nunique() == 12  # two hands per radiograph
    c = load_clinical(clinical)
    assert len(c) == 30 and c["reader_bone_age"].notna().all()
    assert c["chronological_age"].between(60, 204).all()


def test_bone_age_is_visible_in_the_image():
    rng = np.random.default_rng(0)
    ages = np.linspace(12, 216, 40)
    imgs = [render_hand(a, "M", 48, rng) for a in ages]
    bright = [float((img > 60).sum()) for img in imgs]  # bone area grows and densifies with age
    assert spearmanr(ages, bright).statistic > 0.9
    # and it is not just noise: two renderings of the same age are closer than of distant ages
    young = [render_hand(36, "F", 48, rng).astype(float) for _ in range(2)]
    old = render_hand(200, "F", 48, rng).astype(float)
    assert np.abs(young[0] - young[1]).mean() < np.abs(young[0] - old).mean()


def test_label_distributions_carry_the_thesis_biases():
    labels = draw_labels(SyntheticConfig(n_rsna=2000, n_rhpe=2000, n_clinical=206))
    rs = labels["rsna"]
    boys = rs["true"][rs["sex"] == "M"]
    assert np.mean(np.abs(boys - 160) < 24) > 0.5  # boys skewed towards 13 years
    cl = labels["clinical"]
    patho = pathological(cl["true"], cl["ca"], cl["sex"])
    assert 0.15 < patho.mean() < 0.4
    assert abs(np.sum(cl["sex"] == "M") - 103) <= 1


def test_generation_is_reused_and_seeded(tmp_path):
    config = SyntheticConfig(n_rsna=8, n_rhpe=4, n_clinical=8, image_size=32, seed=1)
    a = write_synthetic(config, tmp_path / "a")
    b = write_synthetic(config, tmp_path / "b")
    assert (a / "rsna" / "train.csv").read_text() == (b / "rsna" / "train.csv").read_text()
    assert (a / "rsna" / "images" / "10003.png").read_bytes() == (
        b / "rsna" / "images" / "10003.png"
    ).read_bytes()
    stamp = (a / "manifest.json").stat().st_mtime_ns
    write_synthetic(config, tmp_path / "a")
    assert (a / "manifest.json").stat().st_mtime_ns == stamp
