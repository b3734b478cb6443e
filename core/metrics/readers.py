"""Reader-study metrics (thesis 2.3.3, table 2.1): each reader's markers scored per condition.

A reader reads some exams without the AI (`unaided`) and some with it (`aided`). For every reader,
condition and scope (all exams, or the exams of one body part) the markers are matched to the
ground truth (a marker inside a region pinpoints its fracture) over exactly the exams that reader
read in that condition, exams read without any marker included. The result is a long table
(reader, group, condition, scope, metric, value) that stats.tables.readers_report turns into
table 2.1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.metrics.detection import GroundTruth, match_markers

# Table 2.1's rows: name -> (DetectionMetrics field, scale); SE/SPE in percent as in the thesis.
TABLE_METRICS = {
    "SE_pw (%)": ("se_pw", 100.0),
    "SE_fw (%)": ("se_fw", 100.0),
    "SPE_pw (%)": ("spe_pw", 100.0),
    "FPP_pw (no fract)": ("fpp_pw_nofract", 1.0),
    "FPP_pw (fract)": ("fpp_pw_fract", 1.0),
}
EXTRA_METRICS = {
    "FPP_pw": ("fpp_pw", 1.0),
    "SE_iw (%)": ("se_iw", 100.0),
    "SPE_iw (%)": ("spe_iw", 100.0),
}
READING_TIME = "Reading time (s)"
LOWER_IS_BETTER = ("FPP_pw (no fract)", "FPP_pw (fract)", "FPP_pw", READING_TIME)
CONDITIONS = ("unaided", "aided")


def reader_metrics_table(
    truth: GroundTruth,
    reads: pd.DataFrame,
    markers: pd.DataFrame,
    by: str | None = "body_part",
    extra: bool = True,
) -> pd.DataFrame:
    """Long table of every reader's metrics per condition and scope.

    reads: one row per exam a reader read (reader, study_id, condition, optional group and
    reading_time_s). markers: reader, study_id, condition, image_id, x, y. Scopes: "all" and, when
    `by` names a study attribute of the truth (body_part), "<by>=<value>" for each value. Columns:
    reader, group, condition, scope, metric, value, n_studies. A metric whose denominator is empty in
    a scope (no exam with a fracture, say) is left out rather than reported as NaN.
    """
    metrics = dict(TABLE_METRICS) | (EXTRA_METRICS if extra else {})
    group_of = reads.groupby("reader")["group"].first() if "group" in reads else None
    scopes = [("all", None)]
    if by is not None and by in truth.study_attributes:
        values = sorted({v for v in truth.study_attributes[by] if v is not None}, key=str)
        scopes += [(f"{by}={v}", truth.study_attributes[by] == v) for v in values]
    rows = []
    for (reader, condition), read in reads.groupby(["reader", "condition"], sort=True):
        mine = markers[(markers["reader"] == reader) & (markers["condition"] == condition)]
        matching = match_markers(truth, mine).restrict(read["study_id"].astype(str).unique())
        times = (
            read.set_index(read["study_id"].astype(str))["reading_time_s"]
            if "reading_time_s" in read
            else None
        )
        for scope, mask in scopes:
            m = matching if mask is None else matching.restrict(mask)
            if not m.active.any():
                continue
            result = m.at(None)
            base = {
                "reader": str(reader),
                "group": None if group_of is None else group_of[reader],
                "condition": condition,
                "scope": scope,
                "n_studies": int(m.active.sum()),
            }
            for name, (field, scale) in metrics.items():
                value = getattr(result, field)
                if not np.isnan(value):
                    rows.append(base | {"metric": name, "value": value * scale})
            if times is not None:
                read_here = truth.study_ids[m.active]
                t = times.reindex(read_here).to_numpy(dtype=float)
                if np.isfinite(t).any():
                    rows.append(base | {"metric": READING_TIME, "value": float(np.nanmean(t))})
    columns = ["reader", "group", "condition", "scope", "metric", "value", "n_studies"]
    return pd.DataFrame(rows, columns=columns)


def paired_readers(
    table: pd.DataFrame, scope: str = "all", readers=None, min_readers: int = 2
) -> pd.DataFrame:
    """The rows of one scope (and reader subset) whose reader has the metric in both conditions,
    for metrics with at least `min_readers` such readers (a paired test needs two): the input
    stats.tables.readers_report takes (reader, metric, condition, value)."""
    rows = table[table["scope"] == scope]
    if readers is not None:
        rows = rows[rows["reader"].isin(list(readers))]
    both = rows.groupby(["reader", "metric"])["condition"].transform("nunique") == len(CONDITIONS)
    rows = rows[both]
    enough = rows.groupby("metric")["reader"].transform("nunique") >= min_readers
    return rows[enough][["reader", "metric", "condition", "value"]].reset_index(drop=True)
