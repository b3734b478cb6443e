"""Sample weights W(BA), W(DA), W(BA,DA) against a direct scipy gaussian_kde computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import gaussian_kde

from core.boneage.weights import sample_weights, weights_summary


@pytest.fixture(scope="module")
def ages():
    rng = np.random.default_rng(7)
    ca = rng.uniform(24, 216, 300)
    ba = np.clip(
        np.where(rng.random(300) < 0.7, rng.normal(156, 15, 300), ca + rng.normal(0, 12, 300)), 1, 228
    )
    return ba, ca


def test_w_ba_is_inverse_density_over_its_mean(ages):
    ba, _ = ages
    f = gaussian_kde(ba)(ba)
    expected = (1 / f) / np.mean(1 / f)
    np.testing.assert_allclose(sample_weights("BA", ba), expected, rtol=1e-12)


def test_w_da_is_offset_density_to_minus_alpha(ages):
    ba, ca = ages
    for alpha in (0.5, 1.0):
        f = gaussian_kde(ba - ca)(ba - ca)
        expected = f**-alpha / np.mean(f**-alpha)
        np.testing.assert_allclose(sample_weights("DA", ba, ca, alpha), expected, rtol=1e-12)


def test_w_ba_da_uses_the_joint_2d_kde(ages):
    ba, ca = ages
    points = np.vstack([ba, ba - ca])
    f = gaussian_kde(points)(points)
    expected = f**-0.5 / np.mean(f**-0.5)
    np.testing.assert_allclose(sample_weights("BA_DA", ba, ca, 0.5), expected, rtol=1e-12)
    # and it is not the product of the two marginal weightings
    product = sample_weights("DA", ba, ca) * (gaussian_kde(ba)(ba) ** -0.5)
    assert not np.allclose(product / product.mean(), expected, rtol=1e-3)


def test_rare_ages_weigh_more_and_mean_is_one(ages):
    ba, _ = ages
    w = sample_weights("BA", ba)
    assert w.mean() == pytest.approx(1.0)
    near_mode = np.abs(ba - 156) < 5
    far = np.abs(ba - 156) > 60
    assert w[far].mean() > 3 * w[near_mode].mean()
    s = weights_summary(w)
    assert 1 < s["effective_n"] < len(w)
    assert np.all(sample_weights("none", ba) == 1.0)


def test_errors():
    with pytest.raises(ValueError, match="needs the chronological ages"):
        sample_weights("DA", [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="weighting must be one of"):
        sample_weights("CA", [1.0, 2.0])
    with pytest.raises(ValueError, match="not finite"):
        sample_weights("BA", [1.0, np.nan, 3.0])
    with pytest.raises(ValueError, match="singular"):
        sample_weights("BA", [5.0, 5.0, 5.0])
