"""Running a detector over a dataset and judging its boxes with the thesis' metrics.

`predict_dataset` gives the detections table (study_id, image_id, x0, y0, x1, y1, score), the
format the metrics, the reader-study job and the CLI all read. `evaluate` gives the ROC AUC,
FROC areas, every metric at the DOUBT and FRACTURE operating points, the curves and a per-study
table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from core.detection.dataset import DetectionDataset
from core.detection.operating_points import OperatingPoints
from core.detection.trainer import Detector
from core.metrics.detection import (
    CH5_FP_RANGE,
    IOU_THRESHOLD,
    DetectionCurves,
    GroundTruth,
    match_boxes,
)
from core.progress import Progress

DETECTION_SCHEMA = pa.schema(
    [
        ("study_id", pa.string()),
        ("image_id", pa.string()),
        ("x0", pa.float32()),
        ("y0", pa.float32()),
        ("x1", pa.float32()),
        ("y1", pa.float32()),
        ("score", pa.float32()),
    ]
)
SUMMARY_METRICS = ("se_pw", "spe_pw", "se_fw", "fpp_pw", "fpp_pw_fract", "fpp_pw_nofract", "se_iw", "spe_iw")


def predict_dataset(
    detector: Detector, dataset: DetectionDataset, batch_size: int = 4, progress: bool = True
) -> pa.Table:
    """Every box the detector returns on every image (scores down to its box_score_thresh)."""
    rows = {name: [] for name in DETECTION_SCHEMA.names}
    bar = Progress(len(dataset), f"predict {len(dataset)} images", unit="img", every=20) if progress else None
    images = list(dataset.images)
    for i in range(0, len(images), batch_size):
        chunk = images[i : i + batch_size]
        for record, pred in zip(chunk, detector.predict([r.load() for r in chunk])):
            n = len(pred.scores)
            rows["study_id"] += [record.study_id] * n
            rows["image_id"] += [record.image_id] * n
            for k, name in enumerate(("x0", "y0", "x1", "y1")):
                rows[name].append(pred.boxes[:, k])
            rows["score"].append(pred.scores)
        if bar:
            bar.update(len(chunk))
    columns = {
        name: (
            rows[name] if name in ("study_id", "image_id") else np.concatenate(rows[name] or [np.zeros(0)])
        )
        for name in DETECTION_SCHEMA.names
    }
    return pa.table(columns, schema=DETECTION_SCHEMA)


FINDING_COLUMNS = ("image", "x0", "y0", "x1", "y1", "score", "finding")


def findings(detector: Detector, images) -> pd.DataFrame:
    """The boxes of a batch of images (float (N, H, W) or (N, H, W, 3) in [0, 1], or a list of
    such images) as one row per box: `image` (its index in the batch), x0, y0, x1, y1 (pixels),
    score, and `finding`: "FRACTURE" or "DOUBT" where the score reaches that operating point, else
    "" (always "" before the points are chosen). What a detector's MLflow model returns."""
    frames = []
    for index, pred in enumerate(detector.predict([np.asarray(im, dtype=np.float32) for im in images])):
        frame = pd.DataFrame(pred.boxes.astype(np.float32), columns=["x0", "y0", "x1", "y1"])
        frame.insert(0, "image", np.full(len(frame), index, dtype=np.int64))
        frame["score"] = pred.scores.astype(np.float32)
        frame["finding"] = _finding(pred.scores, detector.operating_points)
        frames.append(frame)
    if not frames:
        return pd.DataFrame({c: [] for c in FINDING_COLUMNS})
    return pd.concat(frames, ignore_index=True)[list(FINDING_COLUMNS)]


def _finding(scores: np.ndarray, points: OperatingPoints | None) -> np.ndarray:
    """FRACTURE at or above its threshold, else DOUBT at or above its own, else ""."""
    out = np.full(len(scores), "", dtype=object)
    if points is not None:
        out[scores >= points.doubt.threshold] = points.doubt.name
        out[scores >= points.fracture.threshold] = points.fracture.name
    return out


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    curves: DetectionCurves
    per_study: pa.Table


def _fp_label(fp_range) -> str:
    return f"{fp_range[0]:g}_{fp_range[1]:g}"


def evaluate(
    truth: GroundTruth,
    detections,
    operating_points: OperatingPoints | None = None,
    iou_threshold: float = IOU_THRESHOLD,
    froc_fp_range: tuple[float, float] = CH5_FP_RANGE,
    froc_fp_per: str = "patient",
) -> Evaluation:
    """ROC AUC; AUFROC over froc_fp_range per patient (or image) and the chapter-5 one (0.02-0.5 FP
    per image); every metric at each operating point (`DOUBT.se_pw`, ...); the per-study table at
    the DOUBT threshold (every box without operating points)."""
    matching = match_boxes(truth, detections, iou_threshold)
    curves = matching.curves()
    metrics = {
        "roc_auc": curves.roc().auc(),
        f"aufroc_{froc_fp_per}_{_fp_label(froc_fp_range)}": curves.froc(froc_fp_per).area(froc_fp_range),
        f"aufroc_image_{_fp_label(CH5_FP_RANGE)}": curves.froc("image").area(CH5_FP_RANGE),
        "studies": float(matching.active.sum()),
        "detections": float(len(matching.det_score)),
    }
    per_study = matching.per_study(None)  # every box, unless there is a DOUBT threshold (below)
    if operating_points is not None:
        for point in (operating_points.doubt, operating_points.fracture):
            m = matching.at(point.threshold)
            metrics[f"{point.name}.threshold"] = point.threshold
            for name in SUMMARY_METRICS:
                metrics[f"{point.name}.{name}"] = getattr(m, name)
        per_study = matching.per_study(operating_points.doubt.threshold)
    return Evaluation(metrics, curves, per_study)
