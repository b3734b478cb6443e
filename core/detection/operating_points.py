"""Operating points of a detector, chosen on a development set (thesis 2.3.1).

"DOUBT" boxes (dashed): the score threshold giving a sensitivity of 96.2%; "FRACTURE" boxes
(plain): the one giving a specificity of 99.2%. Patient-wise SE_pw / SPE_pw by default (the
thesis' main metrics), image-wise on request. DOUBT takes the highest threshold whose
sensitivity reaches the target (the most specific such point); FRACTURE the lowest threshold
whose specificity still reaches its target (the most sensitive such point). When a target cannot
be reached the closest point is taken and `reached` says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from core.metrics.detection import Matching

DOUBT_SENSITIVITY = 0.962
FRACTURE_SPECIFICITY = 0.992


@dataclass(frozen=True)
class OperatingPoint:
    name: str
    threshold: float  # boxes scored >= threshold are shown; +inf: none
    target_metric: str  # "SE_pw", "SPE_pw", "SE_iw" or "SPE_iw"
    target: float
    sensitivity: float  # reached on the development set at this threshold
    specificity: float
    reached: bool


@dataclass(frozen=True)
class OperatingPoints:
    doubt: OperatingPoint
    fracture: OperatingPoint
    level: str
    dev_studies: int

    def to_dict(self) -> dict:
        """Plain values (JSON and torch.load(weights_only=True) safe); +inf as the string 'inf'."""

        def clean(point: OperatingPoint) -> dict:
            d = asdict(point)
            d["threshold"] = "inf" if math.isinf(point.threshold) else float(point.threshold)
            return d

        return {
            "doubt": clean(self.doubt),
            "fracture": clean(self.fracture),
            "level": self.level,
            "dev_studies": self.dev_studies,
        }

    @classmethod
    def from_dict(cls, d: dict) -> OperatingPoints:
        def point(p: dict) -> OperatingPoint:
            return OperatingPoint(**{**p, "threshold": float(p["threshold"])})

        return cls(point(d["doubt"]), point(d["fracture"]), d["level"], int(d["dev_studies"]))

    def describe(self) -> str:
        parts = []
        for p in (self.doubt, self.fracture):
            note = "" if p.reached else " (target not reachable on the dev set)"
            parts.append(
                f"{p.name}: score >= {p.threshold:.4f} -> SE {p.sensitivity:.1%}, SPE {p.specificity:.1%} "
                f"(target {p.target_metric} {p.target:.1%}){note}"
            )
        return "; ".join(parts)


def choose_operating_points(
    dev: Matching,
    doubt_sensitivity: float = DOUBT_SENSITIVITY,
    fracture_specificity: float = FRACTURE_SPECIFICITY,
    level: Literal["patient", "image"] = "patient",
) -> OperatingPoints:
    """The DOUBT and FRACTURE thresholds from a development set's detections matched to its truth."""
    if level not in ("patient", "image"):
        raise ValueError(f"level must be 'patient' or 'image', got {level!r}")
    curves = dev.curves()
    se = curves.se_pw if level == "patient" else curves.se_iw
    spe = curves.spe_pw if level == "patient" else curves.spe_iw
    suffix = "pw" if level == "patient" else "iw"
    t = curves.thresholds  # decreasing; se rises and spe falls along it
    if np.isnan(se).all() or np.isnan(spe).all():
        raise ValueError(
            "the development set needs studies with and without fractures to choose operating points"
        )
    ok = np.flatnonzero(se >= doubt_sensitivity - 1e-12)
    # unreachable: the highest threshold with the best sensitivity reached
    i = int(ok[0]) if len(ok) else int(np.flatnonzero(se == np.nanmax(se))[0])
    doubt = OperatingPoint(
        "DOUBT", float(t[i]), f"SE_{suffix}", doubt_sensitivity, float(se[i]), float(spe[i]), bool(len(ok))
    )
    ok = np.flatnonzero(spe >= fracture_specificity - 1e-12)  # never empty: spe is 1 at +inf
    j = int(ok[-1])
    fracture = OperatingPoint(
        "FRACTURE", float(t[j]), f"SPE_{suffix}", fracture_specificity, float(se[j]), float(spe[j]), True
    )
    return OperatingPoints(doubt, fracture, level, int(dev.active.sum()))
