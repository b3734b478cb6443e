"""DOUBT (SE 96.2%) and FRACTURE (SPE 99.2%) thresholds on hand-built development sets."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from core.detection.operating_points import OperatingPoints, choose_operating_points
from core.metrics.detection import GroundTruth, match_boxes


def dev_set(pos_scores, neg_scores):
    """One exam per score: positive exams with one fracture hit by a box of that score, negative
    exams with one false box of that score."""
    images, regions, boxes = [], [], []
    for i, s in enumerate(pos_scores):
        images.append((f"p{i}", "i"))
        regions.append((f"p{i}", "i", 0, 0, 10, 10))
        boxes.append((f"p{i}", "i", 0, 0, 10, 10, s))
    for i, s in enumerate(neg_scores):
        images.append((f"n{i}", "i"))
        boxes.append((f"n{i}", "i", 0, 0, 10, 10, s))
    truth = GroundTruth.from_tables(
        pd.DataFrame(images, columns=["study_id", "image_id"]),
        pd.DataFrame(regions, columns=["study_id", "image_id", "x0", "y0", "x1", "y1"]),
    )
    return match_boxes(
        truth, pd.DataFrame(boxes, columns=["study_id", "image_id", "x0", "y0", "x1", "y1", "score"])
    )


def test_thresholds_by_hand():
    # 50 positive exams scored 0.50..0.99; 200 negative ones scored 0.000..0.398 and two at 0.9, 0.95
    pos = [0.50 + 0.01 * k for k in range(50)]
    neg = [0.002 * k for k in range(200)] + [0.9, 0.95]
    points = choose_operating_points(dev_set(pos, neg))
    # SE >= 96.2% needs 49 of the 50 positives (48/50 = 96.0% is short): the highest such threshold is 0.51
    assert points.doubt.threshold == pytest.approx(0.51)
    assert points.doubt.sensitivity == pytest.approx(49 / 50) and points.doubt.reached
    # SPE >= 99.2% allows 1 false exam of 202 (2/202 = 99.0% is too many): the lowest threshold
    # keeping at most one is just above 0.9, i.e. the next score up, 0.91
    assert points.fracture.threshold == pytest.approx(0.91)
    assert points.fracture.specificity == pytest.approx(201 / 202)
    assert points.fracture.sensitivity == pytest.approx(9 / 50)
    assert points.dev_studies == 252 and points.level == "patient"


def test_unreachable_sensitivity_is_flagged_and_round_trip():
    # a positive exam never found: SE tops out at 2/3 < 96.2%
    matching = dev_set([0.8, 0.6], [0.1])
    extra = matching.truth  # add an exam with a fracture but no box
    images = pd.DataFrame(
        {
            "study_id": list(extra.study_ids[extra.image_study]) + ["p9"],
            "image_id": list(extra.image_ids) + ["i"],
        }
    )
    regions = pd.DataFrame(
        [("p0", "i", 0, 0, 10, 10), ("p1", "i", 0, 0, 10, 10), ("p9", "i", 0, 0, 10, 10)],
        columns=["study_id", "image_id", "x0", "y0", "x1", "y1"],
    )
    boxes = pd.DataFrame(
        [("p0", "i", 0, 0, 10, 10, 0.8), ("p1", "i", 0, 0, 10, 10, 0.6), ("n0", "i", 0, 0, 10, 10, 0.1)],
        columns=["study_id", "image_id", "x0", "y0", "x1", "y1", "score"],
    )
    points = choose_operating_points(match_boxes(GroundTruth.from_tables(images, regions), boxes))
    assert not points.doubt.reached and points.doubt.sensitivity == pytest.approx(2 / 3)
    assert points.doubt.threshold == pytest.approx(0.6)  # the highest threshold with the best sensitivity
    assert "not reachable" in points.describe()
    # one negative exam: only +inf keeps SPE >= 99.2% if its box scores above every positive
    strict = choose_operating_points(dev_set([0.2, 0.3], [0.9]))
    assert math.isinf(strict.fracture.threshold) and strict.fracture.sensitivity == 0
    d = strict.to_dict()
    assert d["fracture"]["threshold"] == "inf"
    assert OperatingPoints.from_dict(d) == strict


def test_image_level_and_bad_dev_set():
    points = choose_operating_points(dev_set([0.5, 0.7], [0.1, 0.2]), level="image")
    assert points.doubt.target_metric == "SE_iw" and points.doubt.threshold == pytest.approx(0.5)
    with pytest.raises(ValueError, match="studies with and without fractures"):
        choose_operating_points(dev_set([0.5], []))
