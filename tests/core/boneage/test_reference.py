"""Greulich & Pyle SD table and the 2-SD pathological rule, on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from core.boneage.reference import GP_SD_BOYS, GP_SD_GIRLS, as_sex, gp_sd, pathological


def test_tabulated_ages_return_the_table():
    for table, sex in ((GP_SD_BOYS, "M"), (GP_SD_GIRLS, "F")):
        ages, sds = np.array(table).T
        np.testing.assert_allclose(gp_sd(ages, [sex] * len(ages)), sds)


def test_interpolation_between_tabulated_ages():
    # girls: 60 months -> 11.65, 72 months -> 10.23; 66 months lies half-way
    assert gp_sd(66, "F")[0] == pytest.approx((11.65 + 10.23) / 2)
    # boys: 120 -> 9.79, 132 -> 10.09; 123 months is a quarter of the way
    assert gp_sd(123, "M")[0] == pytest.approx(9.79 + 0.25 * (10.09 - 9.79))


def test_outside_the_table_the_nearest_value_is_used():
    assert gp_sd(240, "M")[0] == pytest.approx(13.05)  # beyond 17 years
    assert gp_sd(230, "F")[0] == pytest.approx(7.31)  # beyond 16 years
    assert gp_sd(0, "F")[0] == pytest.approx(0.72)


def test_two_sd_rule_on_hand_made_cases():
    # boy, CA 10 years: SD 9.79, threshold 19.58 months either way
    assert pathological(120 + 19.7, 120, "M")[0]
    assert not pathological(120 + 19.4, 120, "M")[0]
    assert pathological(120 - 19.7, 120, "M")[0]
    assert not pathological(120 - 19.4, 120, "M")[0]
    # the same offset is normal for a girl of 11 years (SD 11.94, threshold 23.88)
    assert not pathological(132 + 22, 132, "F")[0]
    assert pathological(132 + 24, 132, "M")[0]  # boy of 11: SD 10.09, threshold 20.18
    # exactly 2 SD is not beyond 2 SD
    assert not pathological(108 + 18, 108, "M")[0]  # boy of 9: SD 9.00
    assert pathological(108 + 18.01, 108, "M")[0]


def test_vectorised_over_sexes_and_ages():
    ba = np.array([150.0, 150.0, 60.0])
    ca = np.array([120.0, 120.0, 84.0])
    got = pathological(ba, ca, ["M", "F", "female"])
    # 30 > 2*9.79 (boy) ; 30 > 2*11.73 (girl) ; 24 > 2*9.64 (girl, 7 years)
    np.testing.assert_array_equal(got, [True, True, True])
    assert not pathological(130, 120, True)[0]  # boolean "male"


def test_bad_sex_and_lengths_are_errors():
    with pytest.raises(ValueError, match="sex must be M/F"):
        gp_sd(120, "X")
    with pytest.raises(ValueError, match="differ in length"):
        pathological([1, 2], [1], "M")
    np.testing.assert_array_equal(as_sex(["m", "Girl", False, 1]), ["M", "F", "F", "M"])
