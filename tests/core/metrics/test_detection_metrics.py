"""Thesis 2.3.3 metrics on hand-built exams, against hand-computed values and scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from core.metrics.detection import (
    FrocCurve,
    GroundTruth,
    aufroc,
    detection_metrics,
    froc_area,
    match_boxes,
    match_markers,
    max_iou,
    reader_metrics,
    roc_auc,
)


def markers(rows):
    return pd.DataFrame(rows, columns=["study_id", "image_id", "x", "y"])


def test_reader_every_definition(truth):
    # S1: F1 found on its B view, found again on A (a duplicate, not an FP), one marker outside any
    #     region (FP); F2 missed -> FN_pw, 1/2 fractures.  S2: two markers in F3 (duplicates) -> TP_pw.
    # S3: a marker on D -> FP_pw, one FP.  S4: nothing -> TN_pw.
    m = reader_metrics(
        truth,
        markers(
            [
                ("S1", "B", 55, 55),
                ("S1", "A", 30, 25),  # on the border of F1's region on A: inside
                ("S1", "A", 85, 85),
                ("S2", "C", 10, 10),
                ("S2", "C", 12, 11),
                ("S3", "D", 5, 5),
            ]
        ),
    )
    assert (m.tp_pw, m.fn_pw, m.tn_pw, m.fp_pw) == (1, 1, 1, 1)
    assert m.se_pw == 0.5 and m.spe_pw == 0.5
    assert m.se_fw == pytest.approx((1 / 2 + 1 / 1) / 2)  # averaged over patients, not pooled (2/3)
    assert (m.n_fractures, m.tp_fw, m.fp_mw) == (3, 2, 2)
    assert m.fpp_pw == pytest.approx(2 / 4)
    assert m.fpp_pw_fract == pytest.approx(1 / 2) and m.fpp_pw_nofract == pytest.approx(1 / 2)
    assert m.fp_per_image == pytest.approx(2 / 6)
    # image-wise (eq. 2.1): A, B, C have regions and markers; D has a marker, E and G none
    assert (m.tp_iw, m.fn_iw, m.tn_iw, m.fp_iw) == (3, 0, 2, 1)
    assert m.se_iw == 1.0 and m.spe_iw == pytest.approx(2 / 3)


def test_patient_is_tp_only_when_every_fracture_is_pinpointed(truth):
    only_f2 = markers([("S1", "A", 70, 20)])
    m = match_markers(truth, only_f2).restrict(["S1"]).at()
    assert (m.tp_pw, m.fn_pw) == (0, 1) and m.se_fw == 0.5
    both = markers([("S1", "A", 70, 20), ("S1", "A", 20, 20)])
    m = match_markers(truth, both).restrict(["S1"]).at()
    assert (m.tp_pw, m.fn_pw) == (1, 0) and m.se_fw == 1.0
    # a marker next to a region (1 px outside) finds nothing and is a false positive
    m = match_markers(truth, markers([("S1", "A", 30.5, 20), ("S1", "B", 55, 55)])).restrict(["S1"]).at()
    assert (m.tp_fw, m.fp_mw, m.tp_pw) == (1, 1, 0)


def test_negative_exam_with_no_marker_at_all(truth):
    m = reader_metrics(truth, markers([]))
    assert (m.tp_pw, m.fn_pw, m.tn_pw, m.fp_pw) == (0, 2, 2, 0)
    assert m.se_pw == 0 and m.spe_pw == 1 and m.se_fw == 0 and m.fpp_pw == 0


def test_a_marker_in_overlapping_regions_finds_both_fractures():
    images = {"study_id": ["S"], "image_id": ["I"]}
    regions = {
        "study_id": ["S", "S"],
        "image_id": ["I", "I"],
        "fracture_id": ["a", "b"],
        "x0": [0, 5],
        "y0": [0, 5],
        "x1": [10, 15],
        "y1": [10, 15],
    }
    t = GroundTruth.from_tables(images, regions)
    m = reader_metrics(t, markers([("S", "I", 7, 7)]))
    assert m.tp_pw == 1 and m.se_fw == 1.0 and m.fp_mw == 0


def test_box_hits_only_above_iou_one_half():
    images = {"study_id": ["S"], "image_id": ["I"]}
    regions = {"study_id": ["S"], "image_id": ["I"], "x0": [0], "y0": [0], "x1": [10], "y1": [10]}
    t = GroundTruth.from_tables(images, regions)
    exactly_half = {
        "study_id": ["S"],
        "image_id": ["I"],
        "x0": [0],
        "y0": [0],
        "x1": [10],
        "y1": [20],
        "score": [1],
    }
    m = detection_metrics(t, exactly_half)
    assert m.tp_fw == 0 and m.fp_mw == 1  # IoU = 100/200 = 0.5 is not above 0.5
    above = dict(exactly_half, y1=[19])  # IoU = 100/190
    m = detection_metrics(t, above)
    assert m.tp_fw == 1 and m.fp_mw == 0
    # a duplicate box on the same fracture is not a false positive (it hits a region)
    twice = {k: v * 2 for k, v in above.items()}
    assert detection_metrics(t, twice).fp_mw == 0


# Scored boxes: P1 (one fracture a), P2 (fractures b and c), N1 (none); three images.
CURVE_IMAGES = {"study_id": ["P1", "P2", "N1"], "image_id": ["I1", "I2", "I3"]}
CURVE_REGIONS = {
    "study_id": ["P1", "P2", "P2"],
    "image_id": ["I1", "I2", "I2"],
    "fracture_id": ["a", "b", "c"],
    "x0": [0, 0, 20],
    "y0": [0, 0, 20],
    "x1": [10, 10, 30],
    "y1": [10, 10, 30],
}
CURVE_BOXES = pd.DataFrame(
    [
        ("P1", "I1", 0, 0, 10, 10, 0.9),  # a
        ("P2", "I2", 0, 0, 10, 10, 0.8),  # b
        ("N1", "I3", 0, 0, 5, 5, 0.7),  # FP in a negative exam
        ("P2", "I2", 20, 20, 30, 30, 0.6),  # c
        ("P1", "I1", 50, 50, 60, 60, 0.5),  # FP in a positive exam
    ],
    columns=["study_id", "image_id", "x0", "y0", "x1", "y1", "score"],
)


def test_curves_at_every_threshold_by_hand():
    t = GroundTruth.from_tables(CURVE_IMAGES, CURVE_REGIONS)
    c = match_boxes(t, CURVE_BOXES).curves()
    assert c.thresholds.tolist() == [np.inf, 0.9, 0.8, 0.7, 0.6, 0.5]
    assert c.se_pw.tolist() == [0, 0.5, 0.5, 0.5, 1, 1]
    assert c.spe_pw.tolist() == [1, 1, 1, 0, 0, 0]
    assert np.allclose(c.se_fw, [0, 0.5, 0.75, 0.75, 1, 1])
    assert np.allclose(c.fpp_pw, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3])
    assert np.allclose(c.fp_per_image, c.fpp_pw)  # one image per exam here
    # one operating point equals the curve at that threshold
    m = match_boxes(t, CURVE_BOXES).at(0.8)
    assert (m.se_pw, m.spe_pw, m.se_fw, m.fpp_pw) == (0.5, 1.0, 0.75, 0.0)
    # ROC closed to (1, 1): area 0.5 by hand; sklearn on the patient scores the definitions imply
    # (positive exam: the lowest of its fractures' best hit scores; negative: its best box)
    assert c.roc().auc() == pytest.approx(0.5)
    assert c.roc().auc() == pytest.approx(roc_auc_score([1, 1, 0], [0.9, 0.6, 0.7]))
    # FROC per patient over [0, 1]: 0.75 * 1/3 + 1 * 2/3 by hand; over [0.02, 0.5] normalised
    froc = c.froc("patient")
    assert froc.area((0, 1)) == pytest.approx(0.75 / 3 + 2 / 3)
    assert froc.area((0.02, 0.5)) == pytest.approx((0.75 * (1 / 3 - 0.02) + (0.5 - 1 / 3)) / 0.48)
    assert froc.sensitivity_at(0.2) == 0.75 and froc.sensitivity_at(0.0) == 0.75


def test_max_iou_labels_patches():
    t = GroundTruth.from_tables(CURVE_IMAGES, CURVE_REGIONS)
    boxes = CURVE_BOXES.assign(x1=[10, 10, 5, 30, 60], y1=[20, 10, 5, 25, 60])
    # 100/200 with a; b exactly; no region on I3; 50/100 with c; nothing near the last
    assert max_iou(t, boxes).tolist() == pytest.approx([0.5, 1.0, 0.0, 0.5, 0.0])


def test_froc_area_linear_step_and_flat_extension():
    curve = FrocCurve(np.array([np.inf, 0.5]), np.array([0.0, 0.2]), np.array([0.0, 0.6]), "image")
    # linear: the integral of 3x from 0.02 to 0.2, then 0.6 flat to 0.5 (past the last point)
    expected = 1.5 * (0.2**2 - 0.02**2) + 0.6 * 0.3
    assert froc_area(curve, (0.02, 0.5), normalize=False) == pytest.approx(expected)
    assert froc_area(curve, (0.02, 0.5)) == pytest.approx(expected / 0.48)
    assert froc_area(curve, (0.02, 0.5), normalize=False, interpolation="step") == pytest.approx(0.6 * 0.3)
    # against numerical integration of the interpolated curve on a fine grid
    rng = np.random.default_rng(3)
    x = np.concatenate([[0], np.sort(rng.uniform(0, 0.8, 30))])
    y = np.concatenate([[0], np.sort(rng.uniform(0, 1, 30))])
    grid = np.linspace(0.02, 0.5, 200_001)
    numeric = np.trapezoid(np.interp(grid, x, y), grid) / 0.48
    assert froc_area(FrocCurve(x, x, y, "image"), (0.02, 0.5)) == pytest.approx(numeric, abs=1e-6)
    with pytest.raises(ValueError, match="fp_range"):
        froc_area(curve, (0.5, 0.02))


def random_exams(rng, n_studies=300, max_images=3):
    images, regions, boxes = [], [], []
    for s in range(n_studies):
        for i in range(rng.integers(1, max_images + 1)):
            images.append((f"s{s}", f"i{i}"))
            for f in range(rng.integers(0, 3) if rng.random() < 0.5 else 0):
                x, y = rng.uniform(0, 200, 2)
                regions.append(
                    (f"s{s}", f"i{i}", f"f{f}-{i}" if rng.random() < 0.5 else f"f{f}", x, y, x + 20, y + 20)
                )
                if rng.random() < 0.7:  # a box near the region, sometimes a hit
                    dx, dy = rng.normal(0, 5, 2)
                    boxes.append((f"s{s}", f"i{i}", x + dx, y + dy, x + dx + 20, y + dy + 20, rng.random()))
            for _ in range(rng.poisson(0.5)):
                x, y = rng.uniform(0, 200, 2)
                boxes.append((f"s{s}", f"i{i}", x, y, x + 15, y + 15, rng.random() * 0.8))
    images = pd.DataFrame(images, columns=["study_id", "image_id"])
    regions = pd.DataFrame(regions, columns=["study_id", "image_id", "fracture_id", "x0", "y0", "x1", "y1"])
    boxes = pd.DataFrame(boxes, columns=["study_id", "image_id", "x0", "y0", "x1", "y1", "score"])
    return GroundTruth.from_tables(images, regions), boxes


def brute_force(truth, boxes, threshold):
    """The definitions of 2.3.3 written out with loops, one exam at a time."""
    kept = boxes[boxes["score"] >= threshold]
    regions = pd.DataFrame(
        {
            "study": truth.study_ids[truth.image_study[truth.region_image]],
            "image": truth.image_ids[truth.region_image],
            "fracture": truth.region_fracture,
            "box": list(truth.region_boxes),
        }
    )
    tp = fn = tn = fp = fps = 0
    ratios = []
    for s in truth.study_ids:
        regs = regions[regions["study"] == s]
        dets = kept[kept["study_id"] == s]
        found, n_fp = set(), 0
        for d in dets.itertuples():
            hit = False
            for r in regs[regs["image"] == d.image_id].itertuples():
                bx = r.box
                iw = max(0, min(d.x1, bx[2]) - max(d.x0, bx[0]))
                ih = max(0, min(d.y1, bx[3]) - max(d.y0, bx[1]))
                inter = iw * ih
                union = (d.x1 - d.x0) * (d.y1 - d.y0) + (bx[2] - bx[0]) * (bx[3] - bx[1]) - inter
                if inter / union > 0.5:
                    found.add(r.fracture)
                    hit = True
            n_fp += not hit
        fps += n_fp
        fractures = set(regs["fracture"])
        if fractures:
            ratios.append(len(found & fractures) / len(fractures))
            tp, fn = tp + (found >= fractures), fn + (not found >= fractures)
        else:
            tn, fp = tn + dets.empty, fp + (not dets.empty)
    return tp / (tp + fn), tn / (tn + fp), float(np.mean(ratios)), fps / truth.n_studies


def test_vectorised_metrics_equal_the_definitions_written_out():
    truth, boxes = random_exams(np.random.default_rng(0), n_studies=50)
    matching = match_boxes(truth, boxes)
    curves = matching.curves()
    for threshold in (0.05, 0.3, 0.6, 0.9):
        m = matching.at(threshold)
        expected = brute_force(truth, boxes, threshold)
        assert (m.se_pw, m.spe_pw, m.se_fw, m.fpp_pw) == pytest.approx(expected)
        k = np.searchsorted(-curves.thresholds, -threshold, side="right") - 1  # last threshold >= t
        assert (curves.se_pw[k], curves.spe_pw[k], curves.se_fw[k], curves.fpp_pw[k]) == pytest.approx(
            expected
        )


def test_roc_auc_equals_sklearn():
    truth, boxes = random_exams(np.random.default_rng(1))
    matching = match_boxes(truth, boxes)
    # the exam scores the patient-wise definitions imply
    hit = np.full(len(truth.fracture_study), -1.0)
    np.maximum.at(hit, matching.pair_fracture, matching.det_score[matching.pair_det])
    n_fract = truth.study_n_fractures
    score = np.full(truth.n_studies, -1.0)
    np.maximum.at(score, matching.det_study, matching.det_score)
    worst = np.full(truth.n_studies, np.inf)
    np.minimum.at(worst, truth.fracture_study, hit)
    score[n_fract > 0] = worst[n_fract > 0]
    assert roc_auc(truth, boxes) == pytest.approx(roc_auc_score(n_fract > 0, score), abs=1e-12)


def test_roc_auc_is_sklearn_when_exam_and_image_classification_coincide():
    # one image per exam, at most one fracture, and every box in a fracture exam hits it: then
    # patient-wise ROC is plain classification of exams by their best box
    rng = np.random.default_rng(2)
    images, regions, boxes, label, best = [], [], [], [], []
    for s in range(200):
        images.append((f"s{s}", "i"))
        positive = rng.random() < 0.5
        label.append(positive)
        scores = rng.random(rng.integers(1, 4)) * (1.0 if positive else 0.8)
        best.append(scores.max())
        if positive:
            regions.append((f"s{s}", "i", 10, 10, 40, 40))
        for sc in scores:
            boxes.append(
                (f"s{s}", "i", 10, 10, 40, 40, sc) if positive else (f"s{s}", "i", 60, 60, 80, 80, sc)
            )
    truth = GroundTruth.from_tables(
        pd.DataFrame(images, columns=["study_id", "image_id"]),
        pd.DataFrame(regions, columns=["study_id", "image_id", "x0", "y0", "x1", "y1"]),
    )
    boxes = pd.DataFrame(boxes, columns=["study_id", "image_id", "x0", "y0", "x1", "y1", "score"])
    assert roc_auc(truth, boxes) == pytest.approx(roc_auc_score(label, best), abs=1e-12)


def test_rescoring_equals_matching_again_and_ch5_fitness():
    truth, boxes = random_exams(np.random.default_rng(4))
    matching = match_boxes(truth, boxes)
    new = np.random.default_rng(5).random(len(boxes))
    rescored = matching.with_scores(new).froc_area((0.02, 0.5), fp_per="image")
    direct = aufroc(truth, boxes.assign(score=new))
    assert rescored == pytest.approx(direct)
    assert 0 < direct < 1
    # per image, the FP axis is the same count over more units than per patient
    curves = matching.curves()
    n_images = len(truth.image_ids)
    assert np.allclose(curves.fp_per_image * n_images, curves.fpp_pw * truth.n_studies)


def test_breakdown_by_study_attribute_and_per_study_table(truth):
    ms = match_markers(truth, markers([("S1", "B", 55, 55), ("S3", "D", 5, 5)]))
    hand = ms.where("body_part", "hand").at()
    assert (hand.n_studies, hand.tp_pw, hand.fn_pw, hand.fp_pw) == (2, 0, 1, 1)
    table = ms.per_study().to_pylist()
    assert [(r["study_id"], r["outcome"], r["n_found"], r["n_false_positives"]) for r in table] == [
        ("S1", "FN", 1, 0),
        ("S2", "FN", 0, 0),
        ("S3", "FP", 0, 1),
        ("S4", "TN", 0, 0),
    ]


def test_bad_input_is_named(truth, hand_tables):
    IMAGES, REGIONS = hand_tables
    with pytest.raises(ValueError, match="row 1 is on image 'Z' of study 'S1'"):
        match_markers(truth, markers([("S1", "A", 1, 1), ("S1", "Z", 1, 1)]))
    with pytest.raises(ValueError, match="missing column"):
        match_boxes(truth, {"study_id": ["S1"], "image_id": ["A"]})
    with pytest.raises(ValueError, match="row 0 has an empty box"):
        GroundTruth.from_tables(IMAGES, dict(REGIONS, x1=[10, 70, 80, 20]))
    with pytest.raises(ValueError, match="not in images"):
        GroundTruth.from_tables(IMAGES, dict(REGIONS, image_id=["A", "B", "Q", "C"]))
    with pytest.raises(ValueError, match="non-finite"):
        match_markers(truth, markers([("S1", "A", np.nan, 1)]))
    with pytest.raises(ValueError, match="expected 0 values"):
        match_markers(truth, markers([])).with_scores([0.5])
