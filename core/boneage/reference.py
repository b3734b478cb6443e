"""Greulich & Pyle (Brush Foundation) standard deviations of skeletal age, and the 2-SD rule.

A bone-age exam is *pathological* when the bone age differs from the chronological age by more
than two standard deviations of skeletal age at that chronological age and sex (thesis 6.3.1,
"as described in Greulich et al., 1959").

Source of the table
-------------------
W. W. Greulich and S. I. Pyle, *Radiographic Atlas of Skeletal Development of the Hand and
Wrist*, 2nd ed., Stanford University Press, 1959: the standard deviations of skeletal age by
chronological age of the Brush Foundation Study children (Cleveland, Ohio), boys and girls,
in months. The atlas itself could not be consulted from this project's machines; the values
below are the ones reproduced in clinical bone-age tools that cite that table (for instance
`site/processing.py` of the public GitHub repository andknam/Height-Predictor, which labels
them "Brush foundation ... 2 standard deviations"), checked to be monotone-plausible
(small in infancy, 9-13 months in childhood and puberty). Replace them here if a scan of the
atlas disagrees; everything else reads them through `gp_sd`.

Between tabulated ages the SD is interpolated linearly; outside the table (before 3 months,
after 17 years for boys / 16 years for girls) the nearest tabulated value is used.
"""

from __future__ import annotations

import numpy as np

# (chronological age in months, SD of skeletal age in months), Brush Foundation, G&P 1959.
GP_SD_BOYS: tuple[tuple[int, float], ...] = (
    (3, 0.69), (6, 1.13), (9, 1.43), (12, 1.97), (18, 3.52), (24, 3.92), (30, 4.52), (36, 5.08),
    (42, 5.40), (48, 6.66), (54, 8.36), (60, 8.79), (72, 9.17), (84, 8.91), (96, 9.10),
    (108, 9.00), (120, 9.79), (132, 10.09), (144, 10.38), (156, 10.44), (168, 10.72),
    (180, 11.32), (192, 12.86), (204, 13.05),
)  # fmt: skip
GP_SD_GIRLS: tuple[tuple[int, float], ...] = (
    (3, 0.72), (6, 1.16), (9, 1.36), (12, 1.77), (18, 3.49), (24, 4.64), (30, 5.37), (36, 5.97),
    (42, 7.48), (48, 8.98), (54, 10.73), (60, 11.65), (72, 10.23), (84, 9.64), (96, 10.23),
    (108, 10.74), (120, 11.73), (132, 11.94), (144, 10.24), (156, 10.67), (168, 11.30),
    (180, 9.23), (192, 7.31),
)  # fmt: skip
GP_SOURCE = (
    "Greulich & Pyle 1959, Radiographic Atlas of Skeletal Development of the Hand and Wrist, 2nd ed.: "
    "SD of skeletal age by chronological age, Brush Foundation Study (months)"
)
PATHOLOGICAL_SD = 2.0


def as_sex(values) -> np.ndarray:
    """'M'/'F' array from M/F, male/female, boy/girl (any case), or booleans/0-1 meaning male."""
    arr = np.atleast_1d(np.asarray(values, dtype=object))
    out = np.empty(arr.shape, dtype="<U1")
    for i, v in enumerate(arr.ravel()):
        if isinstance(v, bool | np.bool_) or (isinstance(v, int | np.integer) and v in (0, 1)):
            out.ravel()[i] = "M" if bool(v) else "F"
            continue
        text = str(v).strip().lower()
        if text in ("m", "male", "boy", "true", "1"):
            out.ravel()[i] = "M"
        elif text in ("f", "female", "girl", "false", "0"):
            out.ravel()[i] = "F"
        else:
            raise ValueError(f"sex must be M/F (or male/female, or a boolean 'male'), got {v!r}")
    return out


def gp_sd(chronological_age_months, sex) -> np.ndarray:
    """SD of skeletal age (months) at each chronological age (months) for each sex, interpolated."""
    age = np.atleast_1d(np.asarray(chronological_age_months, dtype=np.float64))
    sexes = np.broadcast_to(as_sex(sex), age.shape)
    if not np.all(np.isfinite(age)):
        raise ValueError("chronological ages must be finite to look up the G&P SD")
    out = np.empty_like(age)
    for code, table in (("M", GP_SD_BOYS), ("F", GP_SD_GIRLS)):
        mask = sexes == code
        ages, sds = np.array(table, dtype=np.float64).T
        out[mask] = np.interp(age[mask], ages, sds)
    return out


def pathological(bone_age_months, chronological_age_months, sex, n_sd: float = PATHOLOGICAL_SD) -> np.ndarray:
    """True where |BA - CA| > n_sd x SD(CA, sex) of the G&P reference (strictly greater)."""
    ba = np.atleast_1d(np.asarray(bone_age_months, dtype=np.float64))
    ca = np.atleast_1d(np.asarray(chronological_age_months, dtype=np.float64))
    if ba.shape != ca.shape:
        raise ValueError(f"bone ages {ba.shape} and chronological ages {ca.shape} differ in length")
    return np.abs(ba - ca) > n_sd * gp_sd(ca, sex)
