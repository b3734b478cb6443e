"""Fracture-patch NAS driver costs: the optimiser's ask/tell and the AUFROC fitness at thesis scale.

1. (1+1)-ES ask + tell for a 100-evaluation search (plus replaying it from its checkpoint): genes
   as three repeated `TransitionChoice` parameters (search.es) against the baseline of 45 separate
   `TransitionChoice` parameters (the same search, same mutation semantics). Both must propose the
   same number of mutated genes on average.
2. Study-wise AUFROC of 100,000 scored validation patches (a fifth of the thesis' 500,000) with
   core.metrics.froc (every threshold at once) against a per-threshold pandas loop, run at 100
   thresholds and scaled to the number of distinct scores. Both must agree at those thresholds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _timing import best_time

from core.metrics.froc import patch_froc
from search.es import OnePlusOneES
from search.ofa_space import GENE_CHOICES, OFA_REFERENCE


def es_grouped(budget: int = 100) -> tuple[float, OnePlusOneES]:
    es = OnePlusOneES(budget, num_workers=10, seed=0)
    start = es.ask()
    es.tell(start, 1.0)
    changed = []
    while es.asked < budget:
        p = es.ask()
        changed.append(sum(a != b for a, b in zip(p.candidate, start.candidate)))
        es.tell(p, 0.0)
    return float(np.mean(changed)), es


def es_separate(budget: int = 100) -> float:
    import nevergrad as ng

    param = ng.p.Tuple(*(ng.p.TransitionChoice(list(c), ordered=False) for c in GENE_CHOICES))
    param.value = OFA_REFERENCE.genome
    param.random_state.seed(0)
    opt = ng.optimizers.DiscreteBSOOnePlusOne(param, budget=budget, num_workers=10)
    start = opt.ask()
    opt.tell(start, -1.0)
    changed = []
    for _ in range(budget - 1):
        c = opt.ask()
        changed.append(sum(a != b for a, b in zip(c.value, OFA_REFERENCE.genome)))
        opt.tell(c, 0.0)
    return float(np.mean(changed))


def patches(n: int = 100_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    study = rng.integers(0, n // 10, n)
    image = rng.integers(0, 3, n)
    positive = rng.random(n) < 0.15
    fracture = np.where(positive, rng.integers(0, 2, n), -1)
    score = np.round(np.where(positive, rng.beta(4, 2, n), rng.beta(2, 4, n)), 4)
    return pd.DataFrame(
        {"study": study, "image": image, "positive": positive, "fracture": fracture, "score": score}
    )


def per_threshold(frame: pd.DataFrame, thresholds) -> np.ndarray:
    """The usual hand-written version: one pandas pass per threshold."""
    pos = frame[frame["positive"]]
    per_study = pos.groupby("study")["fracture"].nunique()
    n_images = frame.groupby(["study", "image"]).ngroups
    out = []
    for t in thresholds:
        found = pos[pos["score"] >= t].groupby("study")["fracture"].nunique()
        recall = (found.reindex(per_study.index, fill_value=0) / per_study).mean()
        fp = int(((~frame["positive"]) & (frame["score"] >= t)).sum())
        out.append((recall, fp / n_images))
    return np.asarray(out)


def main() -> None:
    t_grouped, (mutated, es) = best_time(es_grouped, repeat=3)
    text = es.to_json()
    replay, _ = best_time(lambda: OnePlusOneES.from_json(text), repeat=3)
    t_separate, mutated_sep = best_time(es_separate, repeat=1)
    print(
        f"ES, 100 evaluations: grouped genes {t_grouped:.2f} s ({mutated:.1f} genes mutated on average), "
        f"45 separate parameters {t_separate:.2f} s ({mutated_sep:.1f}); "
        f"{t_separate / t_grouped:.1f}x faster; checkpoint replay {replay:.2f} s"
    )
    frame = patches()
    args = (frame["score"], frame["study"], frame["image"], frame["positive"], frame["fracture"].astype(str))
    t_fast, curve = best_time(lambda: patch_froc(*args), repeat=3)
    picked = curve.thresholds[1:][:: max(1, (len(curve.thresholds) - 1) // 100)][:100]
    t_loop, loop = best_time(lambda: per_threshold(frame, picked), repeat=1)
    at = {t: (s, f) for t, s, f in zip(curve.thresholds, curve.sensitivity, curve.fp)}
    assert np.allclose([at[t] for t in picked], loop), "the two FROC computations disagree"
    scaled = t_loop * (len(curve.thresholds) - 1) / len(picked)
    print(
        f"FROC of {len(frame):,} patches ({len(curve.thresholds) - 1:,} thresholds): {t_fast:.3f} s; "
        f"per-threshold loop {t_loop:.2f} s for {len(picked)} thresholds, ~{scaled:.0f} s for all: "
        f"{scaled / t_fast:.0f}x faster"
    )


if __name__ == "__main__":
    main()
