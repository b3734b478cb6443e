"""Input checks shared by the stats modules: every bad input becomes a ValueError naming the problem."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

ALTERNATIVES = ("two-sided", "greater", "less")
_ALIASES = {"larger": "greater", "smaller": "less", "two_sided": "two-sided", "2s": "two-sided"}


def as_vector(x, name: str = "x", *, min_size: int = 1, allow_nan: bool = False) -> np.ndarray:
    """`x` as a 1-D float64 array; ValueError if it is not 1-D, too short or (by default) has NaN/inf."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {type(x).__name__}: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.size < min_size:
        raise ValueError(f"{name} needs at least {min_size} values, got {arr.size}")
    if not allow_nan and not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s)")
    return arr


def as_bool_vector(x, name: str) -> np.ndarray:
    """`x` as a 1-D bool array; values must be 0/1 or True/False."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype != bool:
        try:
            values = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must hold booleans or 0/1, got dtype {arr.dtype}") from None
        if not np.all((values == 0) | (values == 1)):
            raise ValueError(f"{name} must hold booleans or 0/1 only")
        arr = values.astype(bool)
    return arr


def same_length(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b} must have the same length, got {len(a)} and {len(b)}")


def check_fraction(value, name: str, hint: str = "") -> float:
    """A number strictly inside (0, 1): a level, an alpha, a power."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}") from None
    if not 0.0 < number < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}{hint}")
    return number


def check_level(level: float) -> float:
    """A confidence level strictly inside (0, 1)."""
    return check_fraction(level, "level", " (use 0.95, not 95)")


def check_alpha(alpha: float) -> float:
    return check_fraction(alpha, "alpha")


def check_alternative(alternative: str) -> str:
    """'two-sided', 'greater' or 'less' (statsmodels' 'larger'/'smaller' accepted as aliases)."""
    key = _ALIASES.get(alternative, alternative) if isinstance(alternative, str) else alternative
    if key not in ALTERNATIVES:
        raise ValueError(
            f"unknown alternative {alternative!r}; expected one of {', '.join(ALTERNATIVES)}"
            " (or 'larger'/'smaller')"
        )
    return key


def check_choice(value: str, name: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}")
    return value


def require_columns(columns: Iterable[str], required: Iterable[str], what: str) -> None:
    """ValueError listing every required column that `columns` lacks."""
    have = set(columns)
    missing = [c for c in required if c not in have]
    if missing:
        raise ValueError(
            f"{what} is missing column(s) {', '.join(map(repr, missing))}; it has {sorted(have) or 'none'}"
        )
