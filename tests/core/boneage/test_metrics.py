"""core.metrics.boneage: MAE, calls, sensitivity/specificity, sub-groups, fig. 6.4 correlation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.metrics.boneage import (
    evaluation_frame,
    offset_correlation,
    sensitivity_specificity,
    subgroup_masks,
    summary_metrics,
)


def _records(ca, ba, sex):
    n = len(ca)
    return pd.DataFrame(
        {
            "id": [f"e{i}" for i in range(n)],
            "patient_id": [f"p{i}" for i in range(n)],
            "sex": sex,
            "chronological_age": np.asarray(ca, dtype=float),
            "bone_age": np.asarray(ba, dtype=float),
        }
    )


def test_calls_and_sensitivity_specificity_on_hand_made_exams():
    # boys of 10 years (SD 9.79: pathological beyond 19.58 months)
    records = _records([120] * 4, [150, 150, 120, 120], ["M"] * 4)
    predicted = [145, 125, 125, 100]  # call: patho, normal, normal, patho
    frame = evaluation_frame("m", records, predicted)
    assert frame["pathological"].tolist() == [True, True, False, False]
    assert frame["predicted_pathological"].tolist() == [True, False, False, True]
    sens, spec = sensitivity_specificity(frame["pathological"], frame["predicted_pathological"])
    assert (sens, spec) == (0.5, 0.5)
    m = summary_metrics(frame)
    assert m["mae"] == pytest.approx((5 + 25 + 5 + 20) / 4)
    assert m["sensitivity"] == 0.5 and m["specificity"] == 0.5 and m["n_pathological"] == 2
    assert frame["chronological_age"].tolist() == [10.0] * 4  # years, as stats.tables expects


def test_subgroup_bins_follow_the_thesis_boundaries():
    ages = np.array([5, 8.99, 9, 12.99, 13, 17, 17.5]) * 12
    frame = evaluation_frame("m", _records(ages, ages, ["F"] * 7), ages)
    masks = subgroup_masks(frame)
    assert masks["F[5,9["].tolist() == [True, True, False, False, False, False, False]
    assert masks["F[9,13["].tolist() == [False, False, True, True, False, False, False]
    assert masks["F[13,17]"].tolist() == [False, False, False, False, True, True, False]
    assert not masks["M"].any()
    keys = summary_metrics(frame)
    assert "mae_F_5_9" in keys and "mae_F_13_17" in keys and np.isnan(keys["mae_M"])


def test_offset_correlation_of_a_model_that_outputs_the_chronological_age_is_one():
    rng = np.random.default_rng(0)
    ca = rng.uniform(60, 200, 50)
    ba = ca + rng.normal(0, 12, 50)
    assert offset_correlation(ba, ca, ca) == pytest.approx(1.0)  # BA - PBA == BA - CA
    assert abs(offset_correlation(ba, ba + rng.normal(0, 3, 50), ca)) < 0.5  # unanchored model


def test_evaluation_needs_chronological_ages_and_finite_predictions():
    records = _records([np.nan, 100], [90, 100], ["M", "F"])
    with pytest.raises(ValueError, match="chronological age"):
        evaluation_frame("m", records, [1, 2])
    records = _records([100, 100], [90, 100], ["M", "F"])
    with pytest.raises(ValueError, match="not finite"):
        evaluation_frame("m", records, [np.nan, 2])
    with pytest.raises(ValueError, match="3 predictions for 2 exams"):
        evaluation_frame("m", records, [1, 2, 3])
