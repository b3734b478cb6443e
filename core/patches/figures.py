"""Figures 5.1 and 5.2 of the thesis from a search trajectory (matplotlib object API, Agg canvas).

- fig. 5.1 (`score_by_evaluation`): validation AUFROC of each evaluated candidate against its
  evaluation index; the start network (the best OFA ImageNet net) is a red star, its score a red
  horizontal line, the best score found a green one.
- fig. 5.2 (`score_by_parameters`): the same scores against each network's parameter count, the
  start network as a red star.

Both take plain arrays and return a Figure; `save` writes the PNG (as `stats.figures.save_figure`
does; core does not import the layers above it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

START_LABEL = "best OFA ImageNet net"


def _figure() -> Figure:
    fig = Figure(figsize=(6.4, 4.4))
    FigureCanvasAgg(fig)
    return fig


def _check(index, score, name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(index, dtype=np.float64), np.asarray(score, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) == 0:
        raise ValueError(f"{name}: need two equally long, non-empty 1-D arrays, got {x.shape} and {y.shape}")
    return x, y


def score_by_evaluation(index, score, start_score: float | None = None, title: str | None = None) -> Figure:
    """Fig. 5.1: score of each evaluation (index 0 = the start network, drawn as a red star)."""
    x, y = _check(index, score, "score_by_evaluation")
    fig = _figure()
    ax = fig.subplots()
    ax.scatter(x, y, s=18, color="#3182bd", label="evaluated candidate", zorder=2)
    start = x == 0
    if start.any():
        ax.scatter(x[start], y[start], s=160, marker="*", color="red", label=START_LABEL, zorder=3)
    if start_score is None and start.any():
        start_score = float(y[start][0])
    if start_score is not None:
        ax.axhline(start_score, color="red", linewidth=1, label=f"start score {start_score:.3f}")
    ax.axhline(float(np.max(y)), color="green", linewidth=1, label=f"best found {np.max(y):.3f}")
    return _finish(fig, ax, "evaluation", title)


def score_by_parameters(params, score, is_start=None, title: str | None = None) -> Figure:
    """Fig. 5.2: score against the number of trainable parameters (millions); the start network
    (`is_start`, booleans) as a red star."""
    p, y = _check(params, score, "score_by_parameters")
    fig = _figure()
    ax = fig.subplots()
    ax.scatter(p / 1e6, y, s=18, color="#3182bd", label="evaluated candidate", zorder=2)
    if is_start is not None:
        mask = np.asarray(is_start, dtype=bool)
        if mask.shape != p.shape:
            raise ValueError(f"is_start: expected {p.shape[0]} values, got {mask.shape}")
        if mask.any():
            ax.scatter(p[mask] / 1e6, y[mask], s=160, marker="*", color="red", label=START_LABEL, zorder=3)
    return _finish(fig, ax, "trainable parameters (millions)", title)


def _finish(fig: Figure, ax, xlabel: str, title: str | None) -> Figure:
    """Axis labels (AUFROC on y), title, legend and grid shared by the chapter-5 figures."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation AUFROC")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", loc="best")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def save(fig: Figure, path, dpi: int = 150) -> Path:
    """Write `fig` as a PNG at `path` (folders created); return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, format="png")
    return out
