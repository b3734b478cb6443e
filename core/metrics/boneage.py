"""Bone-age metrics (thesis 6.3): MAE, pathological calls, sensitivity/specificity, sub-groups,
and the BA-PBA vs BA-CA correlation of fig. 6.4.

A case is pathological when |BA - CA| > 2 SD of the Greulich & Pyle reference for its sex and
chronological age (core.boneage.reference); the model's call applies the same rule to its
predicted bone age (PBA). `evaluation_frame` builds the per-exam table that
stats.tables.bone_age_report turns into tables 6.1-6.3 with bootstrap intervals; the point
estimates here are what a child run logs as metrics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as _st

from core.boneage.reference import as_sex, pathological

# Chronological-age bins of tables 6.2 and 6.3, in years: [5, 9[, [9, 13[, [13, 17].
CA_BINS = ((5.0, 9.0, "[5,9["), (9.0, 13.0, "[9,13["), (13.0, 17.0, "[13,17]"))
EVALUATION_COLUMNS = (
    "model",
    "id",
    "patient_id",
    "sex",
    "chronological_age",
    "chronological_age_months",
    "bone_age",
    "predicted",
    "pathological",
    "predicted_pathological",
)


def mae(predicted, target) -> float:
    """Mean absolute error (months)."""
    p, t = np.asarray(predicted, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if p.shape != t.shape or p.size == 0:
        raise ValueError(f"predicted {p.shape} and target {t.shape} must be equal-length and non-empty")
    return float(np.mean(np.abs(p - t)))


def sensitivity_specificity(truth, call) -> tuple[float, float]:
    """(TP / (TP + FN), TN / (TN + FP)); NaN where a class is absent."""
    truth, call = np.asarray(truth, dtype=bool), np.asarray(call, dtype=bool)
    pos, neg = truth.sum(), (~truth).sum()
    sens = float((truth & call).sum() / pos) if pos else float("nan")
    spec = float((~truth & ~call).sum() / neg) if neg else float("nan")
    return sens, spec


def offset_correlation(bone_age, predicted, chronological_age) -> float:
    """Pearson r between BA - PBA and BA - CA (fig. 6.4): how much the model anchors on CA."""
    ba = np.asarray(bone_age, dtype=np.float64)
    x, y = ba - np.asarray(chronological_age, dtype=np.float64), ba - np.asarray(predicted, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(_st.pearsonr(x, y).statistic)


def evaluation_frame(model: str, records: pd.DataFrame, predicted) -> pd.DataFrame:
    """Per-exam table of one model on an evaluation set (records with CA), in the columns of
    stats.tables.bone_age_report: chronological_age in years, bone ages in months."""
    pred = np.asarray(predicted, dtype=np.float64)
    if len(pred) != len(records):
        raise ValueError(f"{len(pred)} predictions for {len(records)} exams")
    ca = records["chronological_age"].to_numpy(np.float64)
    if not np.all(np.isfinite(ca)):
        raise ValueError("the evaluation set needs the chronological age of every exam")
    if not np.all(np.isfinite(pred)):
        raise ValueError(f"model {model!r}: {int(np.sum(~np.isfinite(pred)))} predictions are not finite")
    sex = as_sex(records["sex"].to_numpy())
    ba = records["bone_age"].to_numpy(np.float64)
    return pd.DataFrame(
        {
            "model": model,
            "id": records["id"].to_numpy(),
            "patient_id": records["patient_id"].to_numpy(),
            "sex": sex,
            "chronological_age": ca / 12.0,
            "chronological_age_months": ca,
            "bone_age": ba,
            "predicted": pred,
            "pathological": pathological(ba, ca, sex),
            "predicted_pathological": pathological(pred, ca, sex),
        }
    )


def subgroup_masks(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """all, F, M, and F/M by chronological-age bin (years), as in tables 6.2 and 6.3."""
    sex = frame["sex"].to_numpy()
    age = frame["chronological_age"].to_numpy(np.float64)
    masks = {"all": np.ones(len(frame), dtype=bool), "F": sex == "F", "M": sex == "M"}
    for s in ("F", "M"):
        for lo, hi, label in CA_BINS:
            upper = age <= hi if label.endswith("]") else age < hi
            masks[f"{s}{label}"] = (sex == s) & (age >= lo) & upper
    return masks


def summary_metrics(frame: pd.DataFrame) -> dict[str, float]:
    """Point estimates of one model: MAE overall / by sex / by sex and CA bin, sensitivity,
    specificity, counts, and the fig. 6.4 correlation (keys are MLflow-safe)."""
    err = np.abs(frame["predicted"].to_numpy(np.float64) - frame["bone_age"].to_numpy(np.float64))
    out: dict[str, float] = {"n": float(len(frame))}
    for label, mask in subgroup_masks(frame).items():
        key = "mae" if label == "all" else "mae_" + label.replace("[", "_").replace("]", "").replace(",", "_")
        out[key.rstrip("_")] = float(err[mask].mean()) if mask.any() else float("nan")
    sens, spec = sensitivity_specificity(frame["pathological"], frame["predicted_pathological"])
    out["sensitivity"], out["specificity"] = sens, spec
    out["n_pathological"] = float(frame["pathological"].sum())
    out["pearson_r_offsets"] = offset_correlation(
        frame["bone_age"], frame["predicted"], frame["chronological_age_months"]
    )
    return out
