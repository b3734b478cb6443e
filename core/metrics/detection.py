"""Fracture-detection metrics of thesis 2.3.3 (eq. 2.1-2.3): patient-wise, fracture-wise, image-wise.

Ground truth: exams (studies) made of images, fractures drawn as one region per image they are
visible on. Findings: scored boxes (a model) or points (a reader's markers). A box hits a region
at IoU > 0.5, a marker when it lies inside the region (borders included). Then, at a threshold t
(findings scored >= t count):

- patient-wise: a study with fractures is a TP_pw when every fracture has a hit on at least one of
  its regions, else FN_pw; a study without fracture is a TN_pw without any finding, else FP_pw.
  SE_pw = TP/(TP+FN), SPE_pw = TN/(TN+FP) over studies (eq. 2.2);
- fracture-wise: SE_fw = mean over studies with fractures of (found fractures / fractures);
  a finding hitting no region of its study is a marker-wise FP; FPP_pw = FPs / studies (eq. 2.3),
  also over studies with (fract) or without (nofract) fractures, and per image;
- image-wise (eq. 2.1): an image with a region is a TP_iw when it has any finding, etc.

`match_boxes` / `match_markers` do the geometry once and return a `Matching`; everything else is
counting over it: `at(t)` (one operating point), `curves()` (every threshold at once, vectorised),
`roc()`, `froc()`, and `with_scores(s)` to re-score the same findings (the fracture-patch NAS of
chapter 5 keeps a detector's boxes and changes their scores: match once, re-score per network).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

IOU_THRESHOLD = 0.5
CH5_FP_RANGE = (0.02, 0.5)  # thesis 5.3: AUFROC between 0.02 and 0.5 false positives per image

FpPer = Literal["patient", "image"]


# --------------------------------------------------------------------------- inputs


def _frame(table, what: str) -> pd.DataFrame:
    if isinstance(table, pa.Table):
        return table.to_pandas()
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, dict):
        return pd.DataFrame(table)
    raise TypeError(f"{what} must be a pyarrow.Table, pandas.DataFrame or dict of columns")


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; has {list(frame.columns)}")


def _ids(values) -> np.ndarray:
    """Identifiers as strings (1 and '1' are the same study), None/NaN rejected by the caller."""
    return np.asarray([str(v) for v in values], dtype=object)


def _keys(studies: np.ndarray, images: np.ndarray) -> np.ndarray:
    """One string per (study, image): image ids need only be unique within their study."""
    return np.char.add(np.char.add(studies.astype(str), "\x1f"), images.astype(str))


def _finite(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> np.ndarray:
    try:
        values = frame[list(columns)].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}: columns {list(columns)} must be numbers ({err})") from None
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what}: row {row} has a missing or non-finite value in {list(columns)}")
    return values


@dataclass(frozen=True)
class GroundTruth:
    """Studies, their images and the fracture regions (boxes x0, y0, x1, y1 in pixels) on them.

    Index arrays: `image_study[i]` is the study of image i, `region_image[r]` the image of region
    r, `region_fracture[r]` its fracture, `fracture_study[f]` the study of fracture f.
    `study_attributes` holds per-study columns (e.g. body_part) for breakdowns.
    """

    study_ids: np.ndarray
    image_ids: np.ndarray
    image_study: np.ndarray
    region_image: np.ndarray
    region_fracture: np.ndarray
    region_boxes: np.ndarray
    fracture_ids: np.ndarray
    fracture_study: np.ndarray
    study_attributes: dict = field(default_factory=dict)

    @classmethod
    def from_tables(cls, images, regions) -> GroundTruth:
        """`images`: one row per image (study_id, image_id, optional per-study columns such as
        body_part); studies without fracture are those with no region. `regions`: study_id,
        image_id, x0, y0, x1, y1 and optional fracture_id (regions of one fracture share it within
        their study; without the column each region is its own fracture)."""
        im = _frame(images, "images")
        _require(im, ("study_id", "image_id"), "images")
        rg = _frame(regions, "regions")
        _require(rg, ("study_id", "image_id", "x0", "y0", "x1", "y1"), "regions")
        if im[["study_id", "image_id"]].isna().any().any():
            raise ValueError("images: study_id and image_id must not be empty")
        study_of_image = _ids(im["study_id"])
        image_of_image = _ids(im["image_id"])
        duplicated = pd.Series(_keys(study_of_image, image_of_image)).duplicated().to_numpy()
        if duplicated.any():
            row = int(np.flatnonzero(duplicated)[0])
            raise ValueError(
                f"images: image {image_of_image[row]!r} of study {study_of_image[row]!r} is listed twice"
            )
        study_ids, image_study = np.unique(study_of_image, return_inverse=True)
        image_keys = pd.Index(_keys(study_of_image, image_of_image))

        boxes = _finite(rg, ("x0", "y0", "x1", "y1"), "regions")
        empty = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
        if empty.any():
            row = int(np.flatnonzero(empty)[0])
            raise ValueError(
                f"regions: row {row} has an empty box {boxes[row].tolist()} (need x1 > x0 and y1 > y0)"
            )
        r_study, r_image = _ids(rg["study_id"]), _ids(rg["image_id"])
        region_image = image_keys.get_indexer(_keys(r_study, r_image))
        if (region_image < 0).any():
            r = int(np.flatnonzero(region_image < 0)[0])
            raise ValueError(
                f"regions: row {r} is on image {r_image[r]!r} of study {r_study[r]!r}, not in images"
            )
        if "fracture_id" in rg.columns and len(rg):
            if rg["fracture_id"].isna().any():
                row = int(np.flatnonzero(rg["fracture_id"].isna().to_numpy())[0])
                raise ValueError(f"regions: row {row} has no fracture_id")
            fkeys = _keys(r_study, _ids(rg["fracture_id"]))
        else:  # each region its own fracture
            fkeys = _keys(r_study, np.char.add("#", np.arange(len(rg)).astype(str)))
        fracture_keys, region_fracture = np.unique(fkeys, return_inverse=True)
        fracture_study = np.zeros(len(fracture_keys), dtype=np.int64)
        fracture_study[region_fracture] = image_study[region_image]
        fracture_ids = np.asarray([k.split("\x1f", 1)[1] for k in fracture_keys.astype(str)], dtype=object)

        attributes = {}
        for column in im.columns:
            if column in ("study_id", "image_id"):
                continue
            grouped = pd.DataFrame({"s": image_study, "v": im[column].to_numpy()}).groupby("s")["v"]
            first = grouped.first().reindex(range(len(study_ids))).to_numpy(dtype=object)
            first[grouped.nunique(dropna=False).reindex(range(len(study_ids))).to_numpy() > 1] = None
            attributes[column] = first  # None where the images of a study disagree
        return cls(
            study_ids=study_ids,
            image_ids=image_of_image,
            image_study=image_study.astype(np.int64),
            region_image=region_image,
            region_fracture=region_fracture.astype(np.int64),
            region_boxes=boxes.reshape(-1, 4),
            fracture_ids=fracture_ids,
            fracture_study=fracture_study,
            study_attributes=attributes,
        )

    @property
    def n_studies(self) -> int:
        return len(self.study_ids)

    @property
    def study_n_fractures(self) -> np.ndarray:
        return np.bincount(self.fracture_study, minlength=self.n_studies)

    def image_index(self, study_ids, image_ids, what: str) -> np.ndarray:
        """Row of each (study_id, image_id) in the images; an unknown image is an error."""
        studies, images = _ids(study_ids), _ids(image_ids)
        keys = pd.Index(_keys(self.study_ids[self.image_study], self.image_ids))
        out = keys.get_indexer(_keys(studies, images))
        if (out < 0).any():
            row = int(np.flatnonzero(out < 0)[0])
            raise ValueError(
                f"{what}: row {row} is on image {images[row]!r} of study {studies[row]!r}, not in the truth"
            )
        return out.astype(np.int64)

    def study_mask(self, study_ids) -> np.ndarray:
        """Boolean mask over studies selecting `study_ids` (unknown ids are an error)."""
        wanted = set(_ids(study_ids))
        unknown = wanted - set(self.study_ids)
        if unknown:
            raise ValueError(f"unknown study id(s) {sorted(unknown)[:5]}")
        return np.isin(self.study_ids, list(wanted))


# --------------------------------------------------------------------------- geometry


def _group_pairs(group_a: np.ndarray, group_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with group_a[i] == group_b[j], vectorised (no loop over groups)."""
    order_a = np.argsort(group_a, kind="stable")
    order_b = np.argsort(group_b, kind="stable")
    sa, sb = group_a[order_a], group_b[order_b]
    groups = np.intersect1d(sa, sb)
    start_a, end_a = np.searchsorted(sa, groups, "left"), np.searchsorted(sa, groups, "right")
    start_b, end_b = np.searchsorted(sb, groups, "left"), np.searchsorted(sb, groups, "right")
    na, nb = end_a - start_a, end_b - start_b
    per_group = na * nb
    total = int(per_group.sum())
    g = np.repeat(np.arange(len(groups)), per_group)
    offset = np.arange(total) - np.repeat(np.cumsum(per_group) - per_group, per_group)
    ia = start_a[g] + offset // nb[g]
    ib = start_b[g] + offset % nb[g]
    return order_a[ia], order_b[ib]


def box_iou_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a[k] and b[k] (x0, y0, x1, y1), row by row."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _findings(table, what: str, coords: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    frame = _frame(table, what)
    _require(frame, ("study_id", "image_id", *coords), what)
    values = _finite(frame, coords, what) if len(frame) else np.zeros((0, len(coords)))
    if "score" in frame.columns and len(frame):
        scores = _finite(frame, ("score",), what)[:, 0]
    else:
        scores = np.ones(len(frame))
    return frame, values, scores


def match_boxes(truth: GroundTruth, detections, iou_threshold: float = IOU_THRESHOLD) -> Matching:
    """Match scored boxes to regions: a box hits a region of its image when IoU > iou_threshold.

    `detections`: study_id, image_id, x0, y0, x1, y1 and score (all 1 when absent)."""
    frame, boxes, scores = _findings(detections, "detections", ("x0", "y0", "x1", "y1"))
    image = truth.image_index(frame["study_id"], frame["image_id"], "detections")
    det, reg = _group_pairs(image, truth.region_image)
    hit = box_iou_pairs(boxes[det].reshape(-1, 4), truth.region_boxes[reg].reshape(-1, 4)) > iou_threshold
    return Matching._build(truth, image, scores, det[hit], reg[hit])


def max_iou(truth: GroundTruth, detections) -> np.ndarray:
    """Each box's best IoU with a region of its image (0 without any): what the chapter-5 patch
    classifier labels its patches by (positive above 0.5, negative below 0.2)."""
    frame, boxes, _ = _findings(detections, "detections", ("x0", "y0", "x1", "y1"))
    image = truth.image_index(frame["study_id"], frame["image_id"], "detections")
    det, reg = _group_pairs(image, truth.region_image)
    best = np.zeros(len(frame))
    np.maximum.at(best, det, box_iou_pairs(boxes[det].reshape(-1, 4), truth.region_boxes[reg].reshape(-1, 4)))
    return best


def match_markers(truth: GroundTruth, markers) -> Matching:
    """Match points to regions: a marker hits a region of its image when inside it (borders count).

    `markers`: study_id, image_id, x, y and optional score (all 1 when absent)."""
    frame, xy, scores = _findings(markers, "markers", ("x", "y"))
    image = truth.image_index(frame["study_id"], frame["image_id"], "markers")
    det, reg = _group_pairs(image, truth.region_image)
    p, b = xy[det].reshape(-1, 2), truth.region_boxes[reg].reshape(-1, 4)
    hit = (p[:, 0] >= b[:, 0]) & (p[:, 0] <= b[:, 2]) & (p[:, 1] >= b[:, 1]) & (p[:, 1] <= b[:, 3])
    return Matching._build(truth, image, scores, det[hit], reg[hit])


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class DetectionMetrics:
    """Every metric of 2.3.3 at one threshold, with the counts behind them (NaN: empty denominator)."""

    threshold: float
    se_pw: float
    spe_pw: float
    se_fw: float
    fpp_pw: float
    fpp_pw_fract: float
    fpp_pw_nofract: float
    fp_per_image: float
    se_iw: float
    spe_iw: float
    n_studies: int
    n_studies_fract: int
    n_studies_nofract: int
    tp_pw: int
    fn_pw: int
    tn_pw: int
    fp_pw: int
    n_fractures: int
    tp_fw: int
    fp_mw: int
    n_images: int
    tp_iw: int
    fn_iw: int
    tn_iw: int
    fp_iw: int

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _ratio(num, den):
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out if out.ndim else float(out)


@dataclass(frozen=True)
class RocCurve:
    """Patient-wise ROC: fpr = 1 - SPE_pw, tpr = SE_pw at each threshold (decreasing, +inf first)."""

    thresholds: np.ndarray
    fpr: np.ndarray
    tpr: np.ndarray

    def auc(self) -> float:
        """Trapezoid area of the curve closed to (1, 1): studies never right at any threshold are ties
        at the lowest score (scikit-learn's roc_auc_score gives the same number)."""
        x = np.concatenate([self.fpr, [1.0]])
        y = np.concatenate([self.tpr, [1.0]])
        if np.isnan(x).any() or np.isnan(y).any():
            return float("nan")
        return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


@dataclass(frozen=True)
class FrocCurve:
    """FROC: SE_fw against false positives per patient (FPP_pw) or per image, thresholds decreasing."""

    thresholds: np.ndarray
    fp: np.ndarray
    sensitivity: np.ndarray
    fp_per: str

    def area(
        self,
        fp_range: tuple[float, float] = CH5_FP_RANGE,
        normalize: bool = True,
        interpolation: Literal["linear", "step"] = "linear",
    ) -> float:
        """Area under the curve between fp_range[0] and fp_range[1] false positives.

        linear: straight segments between operating points (as the ROC AUC); step: the sensitivity
        at x is the best one reached with at most x false positives. Past its last point the curve
        stays flat at its last sensitivity. normalize divides by the range width (result in [0, 1])."""
        return froc_area(self, fp_range, normalize, interpolation)

    def sensitivity_at(self, fp: float) -> float:
        """Best sensitivity reached with at most `fp` false positives (per patient or image)."""
        ok = self.fp <= fp
        return float(self.sensitivity[ok].max()) if ok.any() else 0.0


def froc_area(
    curve: FrocCurve,
    fp_range: tuple[float, float] = CH5_FP_RANGE,
    normalize: bool = True,
    interpolation: Literal["linear", "step"] = "linear",
) -> float:
    """AUFROC over a false-positive range (see FrocCurve.area)."""
    lo_fp, hi_fp = (float(v) for v in fp_range)
    if not (0 <= lo_fp < hi_fp):
        raise ValueError(f"fp_range must satisfy 0 <= low < high, got {fp_range}")
    if interpolation not in ("linear", "step"):
        raise ValueError(f"interpolation must be 'linear' or 'step', got {interpolation!r}")
    x, y = np.asarray(curve.fp, float), np.asarray(curve.sensitivity, float)
    if len(x) == 0 or np.isnan(y).any():
        return float("nan")
    x = np.append(x, max(hi_fp, x[-1]))
    y = np.append(y, y[-1])
    x0, x1, y0, y1 = x[:-1], x[1:], y[:-1], y[1:]
    lo, hi = np.clip(x0, lo_fp, hi_fp), np.clip(x1, lo_fp, hi_fp)
    width = hi - lo
    keep = width > 0
    if interpolation == "step":
        area = float(np.sum(width[keep] * y0[keep]))
    else:
        slope = (y1[keep] - y0[keep]) / (x1[keep] - x0[keep])
        y_lo = y0[keep] + slope * (lo[keep] - x0[keep])
        y_hi = y0[keep] + slope * (hi[keep] - x0[keep])
        area = float(np.sum(width[keep] * (y_lo + y_hi) / 2))
    return area / (hi_fp - lo_fp) if normalize else area


@dataclass(frozen=True)
class DetectionCurves:
    """Every metric at every distinct score (thresholds decreasing; +inf first: nothing reported)."""

    thresholds: np.ndarray
    se_pw: np.ndarray
    spe_pw: np.ndarray
    se_fw: np.ndarray
    fpp_pw: np.ndarray
    fp_per_image: np.ndarray
    se_iw: np.ndarray
    spe_iw: np.ndarray

    def roc(self) -> RocCurve:
        return RocCurve(self.thresholds, 1.0 - self.spe_pw, self.se_pw)

    def froc(self, fp_per: FpPer = "patient") -> FrocCurve:
        if fp_per not in ("patient", "image"):
            raise ValueError(f"fp_per must be 'patient' or 'image', got {fp_per!r}")
        fp = self.fpp_pw if fp_per == "patient" else self.fp_per_image
        return FrocCurve(self.thresholds, fp, self.se_fw, fp_per)

    def to_arrow(self) -> pa.Table:
        return pa.table({f.name: np.asarray(getattr(self, f.name), dtype=np.float64) for f in fields(self)})


def _count_at_least(events: np.ndarray, thresholds: np.ndarray, weights=None) -> np.ndarray:
    """For each threshold t: how many events (or their total weight) have a score >= t."""
    order = np.argsort(events, kind="stable")
    ranked = events[order]
    first = np.searchsorted(ranked, thresholds, side="left")  # events[first:] >= t
    if weights is None:
        return len(events) - first
    tail = np.concatenate([np.cumsum(weights[order][::-1])[::-1], [0.0]])
    return tail[first]


@dataclass(frozen=True)
class Matching:
    """Findings matched to a ground truth, restricted to a set of studies (`active`)."""

    truth: GroundTruth
    det_image: np.ndarray
    det_score: np.ndarray
    pair_det: np.ndarray
    pair_fracture: np.ndarray
    active: np.ndarray

    @classmethod
    def _build(cls, truth, det_image, scores, hit_det, hit_region) -> Matching:
        pairs = np.unique(np.stack([hit_det, truth.region_fracture[hit_region]]), axis=1)
        return cls(
            truth=truth,
            det_image=np.asarray(det_image, dtype=np.int64),
            det_score=np.asarray(scores, dtype=np.float64),
            pair_det=pairs[0].astype(np.int64),
            pair_fracture=pairs[1].astype(np.int64),
            active=np.ones(truth.n_studies, dtype=bool),
        )

    # ---- views -------------------------------------------------------------------------
    @property
    def det_study(self) -> np.ndarray:
        return self.truth.image_study[self.det_image]

    @property
    def det_false_positive(self) -> np.ndarray:
        """Marker-wise FP: the finding hits no region of any fracture of its study."""
        hits = np.zeros(len(self.det_score), dtype=bool)
        hits[self.pair_det] = True
        return ~hits

    def with_scores(self, scores) -> Matching:
        """The same findings and hits with new scores (one per finding, in input order)."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != self.det_score.shape:
            raise ValueError(f"scores: expected {self.det_score.shape[0]} values, got {scores.shape}")
        if not np.isfinite(scores).all():
            raise ValueError("scores must be finite")
        return replace(self, det_score=scores)

    def restrict(self, studies) -> Matching:
        """Only these studies count (ids, or a boolean mask over truth.study_ids)."""
        mask = np.asarray(studies)
        if mask.dtype != bool:
            mask = self.truth.study_mask(studies)
        if mask.shape != self.active.shape:
            raise ValueError(f"study mask: expected {self.active.shape[0]} values, got {mask.shape}")
        return replace(self, active=self.active & mask)

    def where(self, column: str, value) -> Matching:
        """Only studies whose attribute `column` (e.g. body_part) equals `value`."""
        if column not in self.truth.study_attributes:
            raise ValueError(f"no study attribute {column!r}; have {sorted(self.truth.study_attributes)}")
        return self.restrict(self.truth.study_attributes[column] == value)

    # ---- per-object scores: a threshold t "reports" the object when score >= t ----------
    def _events(self) -> dict:
        t = self.truth
        n_f = len(t.fracture_study)
        fracture_hit = np.full(n_f, -np.inf)
        np.maximum.at(fracture_hit, self.pair_fracture, self.det_score[self.pair_det])
        n_fract = t.study_n_fractures
        study_all_hit = np.full(t.n_studies, np.inf)
        np.minimum.at(study_all_hit, t.fracture_study, fracture_hit)
        study_any = np.full(t.n_studies, -np.inf)
        np.maximum.at(study_any, self.det_study, self.det_score)
        n_images = len(t.image_ids)
        image_any = np.full(n_images, -np.inf)
        np.maximum.at(image_any, self.det_image, self.det_score)
        image_positive = np.zeros(n_images, dtype=bool)
        image_positive[t.region_image] = True

        active, positive = self.active, n_fract > 0
        pos, neg = active & positive, active & ~positive
        f_active = pos[t.fracture_study]
        n_pos = int(pos.sum())
        f_weight = 1.0 / (n_fract[t.fracture_study[f_active]] * max(n_pos, 1))
        fp = self.det_false_positive & active[self.det_study]
        d_study = self.det_study
        img_active = active[t.image_study]
        return {
            "pos": study_all_hit[pos],
            "neg": study_any[neg],
            "fracture": fracture_hit[f_active],
            "fracture_weight": f_weight,
            "fp": self.det_score[fp],
            "fp_fract": self.det_score[fp & positive[d_study]],
            "fp_nofract": self.det_score[fp & ~positive[d_study]],
            "img_pos": image_any[img_active & image_positive],
            "img_neg": image_any[img_active & ~image_positive],
            "n_studies": int(active.sum()),
            "n_pos": n_pos,
            "n_neg": int(neg.sum()),
            "n_images": int(img_active.sum()),
            "active_scores": self.det_score[active[d_study]],
        }

    def at(self, threshold: float | None = None) -> DetectionMetrics:
        """Metrics at one threshold (findings scored >= threshold count); None: every finding counts
        (readers' markers)."""
        e = self._events()
        if threshold is None:
            threshold = float(e["active_scores"].min()) if len(e["active_scores"]) else np.inf
        t = np.asarray([float(threshold)])
        tp_pw = int(_count_at_least(e["pos"], t)[0])
        fp_pw = int(_count_at_least(e["neg"], t)[0])
        tp_fw_w = float(_count_at_least(e["fracture"], t, e["fracture_weight"])[0])
        tp_fw = int(_count_at_least(e["fracture"], t)[0])
        fp = int(_count_at_least(e["fp"], t)[0])
        fp_fract = int(_count_at_least(e["fp_fract"], t)[0])
        tp_iw = int(_count_at_least(e["img_pos"], t)[0])
        fp_iw = int(_count_at_least(e["img_neg"], t)[0])
        n_pos, n_neg, n_img_pos = e["n_pos"], e["n_neg"], len(e["img_pos"])
        return DetectionMetrics(
            threshold=float(threshold),
            se_pw=_ratio(tp_pw, n_pos),
            spe_pw=_ratio(n_neg - fp_pw, n_neg),
            se_fw=tp_fw_w if n_pos else float("nan"),
            fpp_pw=_ratio(fp, e["n_studies"]),
            fpp_pw_fract=_ratio(fp_fract, n_pos),
            fpp_pw_nofract=_ratio(fp - fp_fract, n_neg),
            fp_per_image=_ratio(fp, e["n_images"]),
            se_iw=_ratio(tp_iw, n_img_pos),
            spe_iw=_ratio(len(e["img_neg"]) - fp_iw, len(e["img_neg"])),
            n_studies=e["n_studies"],
            n_studies_fract=n_pos,
            n_studies_nofract=n_neg,
            tp_pw=tp_pw,
            fn_pw=n_pos - tp_pw,
            tn_pw=n_neg - fp_pw,
            fp_pw=fp_pw,
            n_fractures=len(e["fracture"]),
            tp_fw=tp_fw,
            fp_mw=fp,
            n_images=e["n_images"],
            tp_iw=tp_iw,
            fn_iw=n_img_pos - tp_iw,
            tn_iw=len(e["img_neg"]) - fp_iw,
            fp_iw=fp_iw,
        )

    def curves(self) -> DetectionCurves:
        """Every metric at +inf and at each distinct score of the active findings, in O(n log n)."""
        e = self._events()
        scores = np.unique(e["active_scores"])[::-1]
        t = np.concatenate([[np.inf], scores])
        n_pos, n_neg = e["n_pos"], e["n_neg"]
        fp = _count_at_least(e["fp"], t)
        se_fw = _count_at_least(e["fracture"], t, e["fracture_weight"]) if n_pos else np.full(len(t), np.nan)
        return DetectionCurves(
            thresholds=t,
            se_pw=_ratio(_count_at_least(e["pos"], t), n_pos),
            spe_pw=_ratio(n_neg - _count_at_least(e["neg"], t), n_neg),
            se_fw=np.asarray(se_fw, dtype=np.float64),
            fpp_pw=_ratio(fp, e["n_studies"]),
            fp_per_image=_ratio(fp, e["n_images"]),
            se_iw=_ratio(_count_at_least(e["img_pos"], t), len(e["img_pos"])),
            spe_iw=_ratio(len(e["img_neg"]) - _count_at_least(e["img_neg"], t), len(e["img_neg"])),
        )

    def roc(self) -> RocCurve:
        return self.curves().roc()

    def froc(self, fp_per: FpPer = "patient") -> FrocCurve:
        return self.curves().froc(fp_per)

    def roc_auc(self) -> float:
        return self.roc().auc()

    def froc_area(
        self,
        fp_range: tuple[float, float] = CH5_FP_RANGE,
        fp_per: FpPer = "image",
        normalize: bool = True,
        interpolation: Literal["linear", "step"] = "linear",
    ) -> float:
        return self.froc(fp_per).area(fp_range, normalize, interpolation)

    def per_study(self, threshold: float | None = None) -> pa.Table:
        """One row per active study at a threshold: fractures, found, false positives, outcome."""
        t = self.truth
        if threshold is None:
            scores = self.det_score[self.active[self.det_study]]
            threshold = float(scores.min()) if len(scores) else np.inf
        kept = self.det_score >= threshold
        fracture_found = np.zeros(len(t.fracture_study), dtype=bool)
        fracture_found[self.pair_fracture[kept[self.pair_det]]] = True
        n_fract = t.study_n_fractures
        found = np.bincount(t.fracture_study, weights=fracture_found, minlength=t.n_studies).astype(int)
        fp = np.bincount(self.det_study, weights=kept & self.det_false_positive, minlength=t.n_studies)
        findings = np.bincount(self.det_study, weights=kept, minlength=t.n_studies).astype(int)
        outcome = np.where(
            n_fract > 0, np.where(found == n_fract, "TP", "FN"), np.where(findings == 0, "TN", "FP")
        )
        a = self.active
        columns = {
            "study_id": t.study_ids[a].astype(str),
            "n_fractures": n_fract[a],
            "n_found": found[a],
            "n_findings": findings[a],
            "n_false_positives": fp[a].astype(int),
            "outcome": outcome[a],
        }
        for name, values in t.study_attributes.items():
            columns[name] = [None if v is None else str(v) for v in values[a]]
        return pa.table(columns)


# --------------------------------------------------------------------------- shortcuts


def detection_metrics(
    truth: GroundTruth, detections, threshold: float | None = None, iou_threshold: float = IOU_THRESHOLD
) -> DetectionMetrics:
    """Model boxes at one score threshold (None: all boxes)."""
    return match_boxes(truth, detections, iou_threshold).at(threshold)


def reader_metrics(truth: GroundTruth, markers) -> DetectionMetrics:
    """A reader's markers (every marker counts)."""
    return match_markers(truth, markers).at(None)


def roc_auc(truth: GroundTruth, detections, iou_threshold: float = IOU_THRESHOLD) -> float:
    """Patient-wise ROC AUC (SE_pw against 1 - SPE_pw over score thresholds)."""
    return match_boxes(truth, detections, iou_threshold).roc_auc()


def aufroc(
    truth: GroundTruth,
    detections,
    fp_range: tuple[float, float] = CH5_FP_RANGE,
    fp_per: FpPer = "image",
    iou_threshold: float = IOU_THRESHOLD,
    normalize: bool = True,
    interpolation: Literal["linear", "step"] = "linear",
) -> float:
    """Area under the study-wise FROC (SE_fw against FPs per image by default) over fp_range; the
    defaults are the chapter-5 NAS fitness (0.02 to 0.5 FP per image, normalised to [0, 1])."""
    return match_boxes(truth, detections, iou_threshold).froc_area(fp_range, fp_per, normalize, interpolation)
