"""Study-wise FROC / AUFROC of scored patches on hand-computed cases, and against the box-level
metric of core.metrics.detection on the same findings."""

from __future__ import annotations

import numpy as np
import pytest

from core.metrics.detection import GroundTruth, aufroc
from core.metrics.froc import patch_aufroc, patch_froc

# Study A (images a1, a2): fracture F1 hit on both images (0.9 and 0.3), a false box 0.8.
# Study B (image b1): fractures F2 (0.6) and F3 (0.2), false boxes 0.6 and 0.1.
# Study C (images c1, c2): no fracture, false boxes 0.5 and 0.4.  5 images.
CANDIDATES = [
    # study, image, positive, fracture, score
    ("A", "a1", True, "F1", 0.9),
    ("A", "a2", True, "F1", 0.3),
    ("A", "a1", False, None, 0.8),
    ("B", "b1", True, "F2", 0.6),
    ("B", "b1", True, "F3", 0.2),
    ("B", "b1", False, None, 0.6),
    ("B", "b1", False, None, 0.1),
    ("C", "c1", False, None, 0.5),
    ("C", "c2", False, None, 0.4),
]


def columns(rows=CANDIDATES):
    study, image, positive, fracture, score = (list(c) for c in zip(*rows))
    return (
        np.array(score),
        np.array(study),
        np.array(image),
        np.array(positive),
        np.array(fracture, dtype=object),
    )


def test_froc_points_by_hand():
    score, study, image, positive, fracture = columns()
    curve = patch_froc(score, study, image, positive, fracture)
    # thresholds: inf .9 .8 .6 .5 .4 .3 .2 .1
    # found: F1 (weight 1/2) at .9, F2 (1/4) at .6, F3 (1/4) at .2 -> study-wise mean recall
    # FPs: .8 .6 .5 .4 .1 over 5 images
    assert curve.thresholds.tolist() == [np.inf, 0.9, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    assert curve.sensitivity.tolist() == [0, 0.5, 0.5, 0.75, 0.75, 0.75, 0.75, 1.0, 1.0]
    assert np.allclose(curve.fp, [0, 0, 0.2, 0.4, 0.6, 0.8, 0.8, 0.8, 1.0])
    assert curve.fp_per == "image"


def test_aufroc_by_hand():
    score, study, image, positive, fracture = columns()
    # linear: [0.02, 0.2] at 0.5 -> 0.09; (0.2, 0.5)-(0.4, 0.75) -> 0.125; [0.4, 0.5] at 0.75 -> 0.075
    assert patch_aufroc(score, study, image, positive, fracture) == pytest.approx(0.29 / 0.48)
    assert patch_aufroc(score, study, image, positive, fracture, normalize=False) == pytest.approx(0.29)
    # step: the middle segment counts at its left value 0.5 -> 0.1
    assert patch_aufroc(score, study, image, positive, fracture, interpolation="step") == pytest.approx(
        0.265 / 0.48
    )


def test_a_fracture_is_found_on_any_image_of_its_study():
    score, study, image, positive, fracture = columns()
    score = score.copy()
    score[0] = 0.05  # F1's hit on a1 is now the weakest; its hit on a2 (0.3) still finds it
    curve = patch_froc(score, study, image, positive, fracture)
    at = dict(zip(curve.thresholds.tolist(), curve.sensitivity.tolist()))
    assert at[0.3] == pytest.approx(0.5 + 0.25)  # F1 (via a2) + F2
    assert at[0.6] == pytest.approx(0.25)


def test_without_fracture_ids_a_study_counts_as_one_fracture():
    score, study, image, positive, _ = columns()
    curve = patch_froc(score, study, image, positive)
    at = dict(zip(curve.thresholds.tolist(), curve.sensitivity.tolist()))
    assert at[0.9] == 0.5 and at[0.6] == 1.0  # B is found by its best box (0.6)


def test_explicit_image_count_and_no_positive():
    score, study, image, positive, fracture = columns()
    curve = patch_froc(score, study, image, positive, fracture, n_images=10)
    assert curve.fp[-1] == pytest.approx(0.5)
    assert np.isnan(patch_aufroc(score, study, image, np.zeros(len(score), bool)))


def test_errors_name_the_input():
    score, study, image, positive, fracture = columns()
    with pytest.raises(ValueError, match="study_ids has 8 values, expected 9"):
        patch_froc(score, study[:-1], image, positive)
    with pytest.raises(ValueError, match="finite"):
        patch_froc(np.append(score[:-1], np.nan), study, image, positive)
    missing = fracture.copy()
    missing[0] = None
    with pytest.raises(ValueError, match="positive candidate 0 has none"):
        patch_froc(score, study, image, positive, missing)


def test_equals_the_box_level_metric_on_the_same_findings():
    """Positives drawn as boxes on their fracture's region, negatives far away: the detection
    module's AUFROC (per image, 0.02-0.5) must be the patch AUFROC."""
    rng = np.random.default_rng(3)
    images, regions, dets = {"study_id": [], "image_id": []}, [], []
    cand = {"study": [], "image": [], "positive": [], "fracture": [], "score": []}
    for s in range(30):
        n_img = int(rng.integers(1, 4))
        n_frac = int(rng.integers(0, 3))
        for i in range(n_img):
            images["study_id"].append(f"S{s}")
            images["image_id"].append(f"I{i}")
        for f in range(n_frac):
            seen = [i for i in range(n_img) if rng.random() < 0.7] or [0]
            for i in seen:
                box = [20 * f, 0, 20 * f + 10, 10]
                regions.append((f"S{s}", f"I{i}", f"F{f}", *box))
                for _ in range(int(rng.integers(0, 3))):
                    sc = float(rng.random())
                    dets.append((f"S{s}", f"I{i}", *box, sc))
                    for k, v in zip(cand, (f"S{s}", f"I{i}", True, f"F{f}", sc)):
                        cand[k].append(v)
        for _ in range(int(rng.integers(0, 4))):
            i = int(rng.integers(n_img))
            sc = float(rng.random())
            dets.append((f"S{s}", f"I{i}", 500, 500, 510, 510, sc))
            for k, v in zip(cand, (f"S{s}", f"I{i}", False, None, sc)):
                cand[k].append(v)
    region_cols = dict(zip(("study_id", "image_id", "fracture_id", "x0", "y0", "x1", "y1"), zip(*regions)))
    det_cols = dict(zip(("study_id", "image_id", "x0", "y0", "x1", "y1", "score"), zip(*dets)))
    # the detection module knows fractures no box hits; the patch metric only those hit: keep
    # only studies whose every fracture has a hitting candidate for the comparison
    hit = {(s, f) for s, f, p in zip(cand["study"], cand["fracture"], cand["positive"]) if p}
    all_frac = {(r[0], r[2]) for r in regions}
    complete = {s for s in images["study_id"] if all((s2, f) in hit for s2, f in all_frac if s2 == s)}
    keep_images = [i for i, s in enumerate(images["study_id"]) if s in complete]
    truth = GroundTruth.from_tables(
        {k: [v[i] for i in keep_images] for k, v in images.items()},
        {k: [v[i] for i, r in enumerate(regions) if r[0] in complete] for k, v in region_cols.items()},
    )
    keep_det = [i for i, d in enumerate(dets) if d[0] in complete]
    expected = aufroc(truth, {k: [v[i] for i in keep_det] for k, v in det_cols.items()}, fp_per="image")
    keep = [i for i, s in enumerate(cand["study"]) if s in complete]
    got = patch_aufroc(
        np.array(cand["score"])[keep],
        np.array(cand["study"])[keep],
        np.array(cand["image"])[keep],
        np.array(cand["positive"])[keep],
        np.array(cand["fracture"], dtype=object)[keep],
        n_images=len(keep_images),
    )
    assert len(keep) > 30 and 0 < got < 1
    assert got == pytest.approx(expected, abs=1e-12)
