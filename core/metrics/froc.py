"""FROC and AUFROC of scored candidate patches, study-wise (thesis 5.3.5, the NAS fitness).

The chapter-5 setting: a detector proposed boxes; each became a patch that a classifier scores.
Geometry is already settled (each patch's IoU with the ground truth decided whether it *hits* a
fracture), so only counting remains. At a threshold t the patches scored >= t are reported:

- a fracture is found when at least one of its hitting patches, on any image of its study, is
  reported; the sensitivity is the study-wise average of recall (found / fractures of the study,
  averaged over studies with fractures), as SE_fw in `core.metrics.detection`;
- every reported patch that hits no fracture is a false positive; the x axis is false positives
  per image (FPs / images).

The curve is a `core.metrics.detection.FrocCurve` and its area is that module's `froc_area`
(linear interpolation between operating points, flat past the last one, normalised by the
range), integrated between 0.02 and 0.5 FP per image by default. `match_boxes` there needs the
ground-truth boxes, which a patch manifest does not carry; this module builds the same curve
from the hit labels instead of duplicating the area logic.

Fractures: `fracture_ids` names the fracture a hitting patch hits (unique within its study, so
several images of a study share it); without it all hitting patches of a study are taken as one
fracture. Fractures that no candidate hits are unknown to a patch set and not counted: the
sensitivity is relative to what the detector proposed (it reaches 1 when every candidate is
reported). `n_images` defaults to the distinct (study, image) pairs among the candidates.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from core.metrics.detection import CH5_FP_RANGE, FrocCurve, froc_area


def _array(values, name: str, n: int | None = None) -> np.ndarray:
    out = np.asarray(values)
    if out.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {out.shape}")
    if n is not None and len(out) != n:
        raise ValueError(f"{name} has {len(out)} values, expected {n} (one per candidate)")
    return out


def patch_froc(
    scores,
    study_ids,
    image_ids,
    positive,
    fracture_ids=None,
    n_images: int | None = None,
) -> FrocCurve:
    """Study-wise FROC of scored candidates: sensitivity against false positives per image.

    scores: one per candidate (higher = more confident); study_ids / image_ids: where each comes
    from (image ids need only be unique within a study); positive: the candidate hits a fracture
    (IoU > 0.5 in chapter 5); fracture_ids: which fracture a positive candidate hits (ignored for
    negatives). Thresholds are decreasing, +inf first (nothing reported).
    """
    scores = _array(scores, "scores").astype(np.float64)
    n = len(scores)
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    studies = _array(study_ids, "study_ids", n).astype(str)
    images = _array(image_ids, "image_ids", n).astype(str)
    positive = _array(positive, "positive", n).astype(bool)
    if fracture_ids is None:
        fractures = np.where(positive, "", None)
    else:
        fractures = _array(fracture_ids, "fracture_ids", n).astype(object)
        missing = positive & pd.isna(fractures)
        if missing.any():
            raise ValueError(f"fracture_ids: positive candidate {int(np.flatnonzero(missing)[0])} has none")
    if n_images is None:
        n_images = len(set(zip(studies.tolist(), images.tolist())))
    if n_images <= 0:
        raise ValueError("n_images must be positive (no candidate and no image given)")

    thresholds = np.concatenate([[np.inf], np.unique(scores)[::-1]])
    # false positives reported at each threshold
    neg_sorted = np.sort(scores[~positive])
    fp = len(neg_sorted) - np.searchsorted(neg_sorted, thresholds, side="left")
    # a fracture is found from the best score among its hitting candidates
    if positive.any():
        frame = pd.DataFrame(
            {
                "study": studies[positive],
                "fracture": fractures[positive].astype(str),
                "score": scores[positive],
            }
        )
        per_fracture = frame.groupby(["study", "fracture"], sort=False)["score"].max()
        fracture_study = per_fracture.index.get_level_values("study").to_numpy()
        per_study = pd.Series(fracture_study).value_counts()
        weight = 1.0 / (per_study.loc[fracture_study].to_numpy() * len(per_study))
        order = np.argsort(per_fracture.to_numpy(), kind="stable")
        best, w = per_fracture.to_numpy()[order], weight[order]
        tail = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]])
        sensitivity = tail[np.searchsorted(best, thresholds, side="left")]
    else:
        sensitivity = np.full(len(thresholds), np.nan)
    return FrocCurve(thresholds, fp / n_images, sensitivity, "image")


def patch_aufroc(
    scores,
    study_ids,
    image_ids,
    positive,
    fracture_ids=None,
    n_images: int | None = None,
    fp_range: tuple[float, float] = CH5_FP_RANGE,
    normalize: bool = True,
    interpolation: Literal["linear", "step"] = "linear",
) -> float:
    """Area under `patch_froc` between fp_range FPs per image (chapter 5: 0.02 to 0.5), divided by
    the range width when normalize (a value in [0, 1]); NaN when no candidate is positive."""
    curve = patch_froc(scores, study_ids, image_ids, positive, fracture_ids, n_images)
    return froc_area(curve, fp_range, normalize, interpolation)
