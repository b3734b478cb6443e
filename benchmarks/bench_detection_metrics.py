"""Detection metrics speed: every threshold at once (core.metrics.detection) against per-threshold loops.

Data: 5,000 exams of 1-4 images, about 40% with 1-3 fractures (regions on one or more views),
and about 40,000 scored boxes, some on fractures. Baseline: the way such metrics are usually
written, a pandas pass per threshold (keep the boxes scored >= t, group by fracture and by exam)
on the same box-to-region hits; here at 100 thresholds only, then scaled to the number of distinct
scores that `curves()` covers. Both must agree at those 100 thresholds. Also timed: the geometry
(match_boxes) and one re-scoring + AUFROC, the fitness call of the chapter-5 NAS.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _timing import best_time, peak_rss_mib

from core.metrics.detection import GroundTruth, match_boxes

SEED = 0


def make_data(n_studies: int = 5000):
    rng = np.random.default_rng(SEED)
    images, regions, boxes = [], [], []
    for s in range(n_studies):
        views = [f"v{i}" for i in range(rng.integers(1, 5))]
        images += [(f"s{s}", v) for v in views]
        for f in range(rng.integers(1, 4) if rng.random() < 0.4 else 0):
            for v in views:
                if rng.random() < 0.6 or v == views[0]:
                    x, y = rng.uniform(0, 900, 2)
                    regions.append((f"s{s}", v, f"f{f}", x, y, x + 40, y + 30))
                    for _ in range(rng.poisson(1.2)):
                        dx, dy = rng.normal(0, 6, 2)
                        boxes.append((f"s{s}", v, x + dx, y + dy, x + dx + 40, y + dy + 30, rng.beta(4, 2)))
        for v in views:
            for _ in range(rng.poisson(2.5)):
                x, y = rng.uniform(0, 900, 2)
                boxes.append((f"s{s}", v, x, y, x + 30, y + 30, rng.beta(2, 4)))
    images = pd.DataFrame(images, columns=["study_id", "image_id"])
    regions = pd.DataFrame(regions, columns=["study_id", "image_id", "fracture_id", "x0", "y0", "x1", "y1"])
    boxes = pd.DataFrame(boxes, columns=["study_id", "image_id", "x0", "y0", "x1", "y1", "score"])
    boxes["score"] = boxes["score"].round(4)  # ties, as real detectors' rounded scores have
    return GroundTruth.from_tables(images, regions), boxes


def per_threshold_loop(matching, thresholds):
    """The usual hand-written version: one pandas pass per threshold."""
    t = matching.truth
    hits = pd.DataFrame(
        {
            "det": matching.pair_det,
            "fracture": matching.pair_fracture,
            "score": matching.det_score[matching.pair_det],
        }
    )
    n_fract = pd.Series(t.study_n_fractures)
    dets = pd.DataFrame(
        {"study": matching.det_study, "score": matching.det_score, "fp": matching.det_false_positive}
    )
    fracture_study = pd.Series(t.fracture_study)
    pos = n_fract[n_fract > 0].index
    neg = n_fract[n_fract == 0].index
    out = []
    for th in thresholds:
        found = hits[hits["score"] >= th]["fracture"].unique()
        found_per_study = fracture_study[found].value_counts().reindex(range(t.n_studies), fill_value=0)
        kept = dets[dets["score"] >= th]
        any_box = kept.groupby("study").size().reindex(range(t.n_studies), fill_value=0)
        se_pw = float((found_per_study[pos] == n_fract[pos]).mean())
        spe_pw = float((any_box[neg] == 0).mean())
        se_fw = float((found_per_study[pos] / n_fract[pos]).mean())
        fpp = float(kept["fp"].sum() / t.n_studies)
        out.append((se_pw, spe_pw, se_fw, fpp))
    return np.asarray(out)


def main() -> None:
    truth, boxes = make_data()
    print(
        f"{truth.n_studies:,} exams, {len(truth.image_ids):,} images, "
        f"{len(truth.fracture_study):,} fractures, {len(boxes):,} boxes"
    )
    t_match, matching = best_time(lambda: match_boxes(truth, boxes), repeat=3)
    t_curves, curves = best_time(matching.curves, repeat=3)
    n_thr = len(curves.thresholds)
    sample = np.quantile(matching.det_score, np.linspace(0.0, 1.0, 100))
    t_loop, loop = best_time(lambda: per_threshold_loop(matching, sample), repeat=1)
    k = np.searchsorted(-curves.thresholds, -sample, side="right") - 1
    ours = np.stack([curves.se_pw[k], curves.spe_pw[k], curves.se_fw[k], curves.fpp_pw[k]], axis=1)
    assert np.allclose(ours, loop), "vectorised curves differ from the per-threshold loop"
    loop_all = t_loop / len(sample) * n_thr
    print(f"match_boxes (IoU > 0.5 geometry): {t_match * 1e3:.0f} ms")
    print(
        f"all {n_thr:,} thresholds at once: {t_curves * 1e3:.1f} ms; per-threshold pandas loop: "
        f"{t_loop / len(sample) * 1e3:.1f} ms per threshold, {loop_all:.1f} s for all (extrapolated)"
    )
    print(f"speed-up, every threshold: {loop_all / t_curves:,.0f}x (agree at 100 thresholds)")
    new_scores = np.random.default_rng(1).random(len(boxes))
    t_fit, fit = best_time(
        lambda: matching.with_scores(new_scores).froc_area((0.02, 0.5), fp_per="image"), repeat=5
    )
    print(f"re-score + AUFROC(0.02-0.5 FP/image), the NAS fitness: {t_fit * 1e3:.1f} ms (value {fit:.3f})")
    print(f"peak memory: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
