"""Per-reader metrics of a hand-built crossover study, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.metrics.readers import paired_readers, reader_metrics_table

# S1 (hand; F1 on A and B, F2 on A), S2 (foot; F3), S3 (hand; none), S4 (foot; none).
# R1 reads S1, S3 unaided and S2, S4 aided; R2 the other way round.
READS = pd.DataFrame(
    [
        ("R1", "radiologist", "S1", "unaided", 60.0),
        ("R1", "radiologist", "S3", "unaided", 40.0),
        ("R1", "radiologist", "S2", "aided", 30.0),
        ("R1", "radiologist", "S4", "aided", 50.0),
        ("R2", "emergency doctor", "S2", "unaided", np.nan),
        ("R2", "emergency doctor", "S4", "unaided", np.nan),
        ("R2", "emergency doctor", "S1", "aided", np.nan),
        ("R2", "emergency doctor", "S3", "aided", np.nan),
    ],
    columns=["reader", "group", "study_id", "condition", "reading_time_s"],
)
MARKERS = pd.DataFrame(
    [
        ("R1", "S1", "unaided", "B", 55, 55),  # F1 only: S1 is FN, half its fractures
        ("R1", "S2", "aided", "C", 10, 10),  # F3: TP
        ("R1", "S4", "aided", "G", 5, 5),  # a marker in a fracture-free exam: FP
        ("R2", "S1", "aided", "A", 20, 20),  # F1
        ("R2", "S1", "aided", "A", 70, 20),  # F2: TP
        ("R2", "S1", "aided", "A", 85, 85),  # outside every region: one FP in a fracture exam
        ("R2", "S2", "unaided", "C", 50, 50),  # misses F3 (outside its region), FP
    ],
    columns=["reader", "study_id", "condition", "image_id", "x", "y"],
)


def value(table, reader, condition, metric, scope="all"):
    rows = table[
        (table.reader == reader)
        & (table.condition == condition)
        & (table.metric == metric)
        & (table.scope == scope)
    ]
    return rows["value"].item() if len(rows) else None


def test_reader_metrics_by_hand(truth):
    t = reader_metrics_table(truth, READS, MARKERS)
    expected = {
        ("R1", "unaided"): {
            "SE_pw (%)": 0,
            "SE_fw (%)": 50,
            "SPE_pw (%)": 100,
            "FPP_pw (no fract)": 0,
            "FPP_pw (fract)": 0,
        },
        ("R1", "aided"): {
            "SE_pw (%)": 100,
            "SE_fw (%)": 100,
            "SPE_pw (%)": 0,
            "FPP_pw (no fract)": 1,
            "FPP_pw (fract)": 0,
        },
        ("R2", "unaided"): {
            "SE_pw (%)": 0,
            "SE_fw (%)": 0,
            "SPE_pw (%)": 100,
            "FPP_pw (no fract)": 0,
            "FPP_pw (fract)": 1,
        },
        ("R2", "aided"): {
            "SE_pw (%)": 100,
            "SE_fw (%)": 100,
            "SPE_pw (%)": 100,
            "FPP_pw (no fract)": 0,
            "FPP_pw (fract)": 1,
        },
    }
    for (reader, condition), metrics in expected.items():
        for metric, v in metrics.items():
            assert value(t, reader, condition, metric) == pytest.approx(v), (reader, condition, metric)
    assert value(t, "R1", "unaided", "FPP_pw") == 0 and value(t, "R2", "aided", "FPP_pw") == pytest.approx(
        0.5
    )
    # reading time: the mean over the exams read in that condition; absent for R2
    assert (
        value(t, "R1", "unaided", "Reading time (s)") == 50
        and value(t, "R1", "aided", "Reading time (s)") == 40
    )
    assert value(t, "R2", "aided", "Reading time (s)") is None
    # body part scopes: R1 read only hand exams unaided, so it has no unaided foot metrics
    assert value(t, "R1", "unaided", "SE_fw (%)", "body_part=hand") == 50
    assert value(t, "R1", "unaided", "SE_fw (%)", "body_part=foot") is None
    assert value(t, "R2", "unaided", "SE_pw (%)", "body_part=foot") == 0
    assert set(t[t.reader == "R2"]["group"]) == {"emergency doctor"}
    assert t[(t.reader == "R1") & (t.condition == "aided") & (t.scope == "all")]["n_studies"].iloc[0] == 2


def test_paired_rows_need_both_conditions_and_two_readers(truth):
    t = reader_metrics_table(truth, READS, MARKERS)
    rows = paired_readers(t, "all")
    assert "Reading time (s)" not in set(rows.metric)  # only R1 has times: no paired test possible
    assert set(rows.reader) == {"R1", "R2"} and len(rows) == 2 * 2 * rows.metric.nunique()
    assert paired_readers(t, "body_part=foot").empty  # R1 read no foot exam unaided
    assert set(paired_readers(t, "all", readers=["R1"], min_readers=1).reader) == {"R1"}
