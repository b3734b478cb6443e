"""Effect sizes: hand-computed values, the thesis' closed forms, a simulation, and invariances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra.numpy import arrays

from stats import cohen_d, d_from_prob_superiority, pooled_sd, prob_superiority


def test_pooled_sd_and_d_by_hand():
    a, b = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0, 8.0]
    # s_a^2 = 1, s_b^2 = 20/3: ((2 * 1) + (3 * 20/3)) / 5 = 4.4
    assert pooled_sd(a, b) == pytest.approx(np.sqrt(4.4), rel=1e-12)
    assert cohen_d(a, b) == pytest.approx(-3.0 / np.sqrt(4.4), rel=1e-12)


@pytest.mark.parametrize(("d", "expected"), [(1.09, 0.78), (0.44, 0.62), (0.0, 0.50), (-0.85, 0.27)])
def test_probability_of_superiority_thesis_values(d, expected):
    # Thesis 4.4.2: d = +1.09 gives 78% and d = +0.44 gives 61-62% (Magnusson's Phi(d / sqrt 2)).
    assert round(prob_superiority(d), 2) == expected


def test_probability_of_superiority_is_the_chance_a_draw_of_a_beats_a_draw_of_b():
    rng = np.random.default_rng(0)
    for d in (0.3, 1.09, -0.7):
        a, b = rng.normal(d, 1, 400_000), rng.normal(0, 1, 400_000)
        assert np.mean(a > b) == pytest.approx(prob_superiority(d), abs=0.003)


def test_vectorised_over_arrays():
    d = np.array([-1.0, 0.0, 1.0])
    p = prob_superiority(d)
    assert p.shape == (3,) and p[1] == 0.5 and p[0] == pytest.approx(1 - p[2])
    np.testing.assert_allclose(d_from_prob_superiority(p), d, atol=1e-12)


@pytest.mark.parametrize("p", [0.0, 1.0, 1.5, -0.1, float("nan")])
def test_inverse_rejects_probabilities_outside_the_open_interval(p):
    with pytest.raises(ValueError, match="must be in \\(0, 1\\)"):
        d_from_prob_superiority(p)


def test_bad_groups():
    with pytest.raises(ValueError, match="at least 2"):
        cohen_d([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="empty"):
        pooled_sd([], [1.0, 2.0])
    assert np.isnan(cohen_d([1.0, 1.0], [1.0, 1.0]))


_values = arrays(
    np.float64, hs.integers(3, 30), elements=hs.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
)


def _spread(x: np.ndarray) -> bool:
    return np.std(x) > 1e-3


@settings(max_examples=60, deadline=None)
@given(_values, _values, hs.floats(-1e3, 1e3), hs.floats(1e-2, 1e2))
def test_d_is_invariant_to_shift_and_scale_and_negated_by_swapping(a, b, shift, scale):
    if not (_spread(a) and _spread(b)):
        return
    d = cohen_d(a, b)
    assert cohen_d(a + shift, b + shift) == pytest.approx(d, rel=1e-6, abs=1e-9)
    assert cohen_d(a * scale, b * scale) == pytest.approx(d, rel=1e-6, abs=1e-9)
    assert cohen_d(b, a) == pytest.approx(-d, rel=1e-12, abs=1e-12)
    assert pooled_sd(a * scale, b * scale) == pytest.approx(scale * pooled_sd(a, b), rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(hs.floats(1e-6, 1 - 1e-6))
def test_prob_superiority_inverts_d_from_prob_superiority(p):
    assert prob_superiority(d_from_prob_superiority(p)) == pytest.approx(p, rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(hs.floats(-8, 8), hs.floats(-8, 8))
def test_prob_superiority_is_increasing_and_symmetric(d1, d2):
    assert prob_superiority(-d1) == pytest.approx(1 - prob_superiority(d1), abs=1e-12)
    if d1 < d2:
        assert prob_superiority(d1) <= prob_superiority(d2)
