"""Bone-age figures with matplotlib's object API (Agg canvas, no display, safe in workers).

- weights_figure: the training distribution and the sample weights a weighting gives it;
- offset_scatter_figure: BA - PBA against BA - CA per model with Pearson r (thesis fig. 6.4).
Both return a Figure; the job saves them with stats.figures.save_figure.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from core.boneage.weights import LABELS


def _figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def weights_figure(bone_age, weights, kind: str, sex=None, chronological_age=None, title: str = "") -> Figure:
    """Histogram of the variable the weighting corrects (by sex when given) and its weights."""
    ba = np.asarray(bone_age, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    fig = _figure((6.4, 4.2))
    ax = fig.subplots()
    if kind == "BA_DA":
        da = ba - np.asarray(chronological_age, dtype=np.float64)
        points = ax.scatter(ba / 12, da / 12, c=w, s=8, cmap="viridis", linewidths=0)
        fig.colorbar(points, ax=ax, label=f"{LABELS[kind]} weight")
        ax.set_xlabel("bone age (years)")
        ax.set_ylabel("BA - CA (years)")
    else:
        x = ba if kind in ("BA", "none") else ba - np.asarray(chronological_age, dtype=np.float64)
        x = x / 12
        bins = np.histogram_bin_edges(x, 30)
        if sex is not None:
            sex = np.asarray(sex)
            for code, colour in (("F", "#e6550d"), ("M", "#3182bd")):
                ax.hist(
                    x[sex == code],
                    bins=bins,
                    alpha=0.5,
                    color=colour,
                    label=f"{code} (N={int((sex == code).sum())})",
                )
        else:
            ax.hist(x, bins=bins, alpha=0.5, color="#3182bd")
        ax.set_xlabel("bone age (years)" if kind in ("BA", "none") else "BA - CA (years)")
        ax.set_ylabel("training images")
        right = ax.twinx()
        order = np.argsort(x)
        right.plot(x[order], w[order], color="black", linewidth=1.2, label="weight")
        right.set_ylabel(f"{LABELS[kind]} weight (mean 1)")
        ax.legend(loc="upper left", fontsize="small")
    ax.set_title(title or f"{LABELS[kind]}: max/min {w.max() / w.min():.1f}")
    fig.tight_layout()
    return fig


def offset_scatter_figure(panels: list[tuple[str, np.ndarray, np.ndarray, float]]) -> Figure:
    """One panel per model: x = BA - CA, y = BA - PBA (years), Pearson r in the title (fig. 6.4).
    `panels`: (label, ba_minus_ca_months, ba_minus_pba_months, r)."""
    if not panels:
        raise ValueError("no model to plot")
    fig = _figure((4.0 * len(panels), 4.0))
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharex=True, sharey=True))
    for ax, (label, x, y, r) in zip(axes, panels):
        ax.scatter(np.asarray(x) / 12, np.asarray(y) / 12, s=8, alpha=0.7, color="#3182bd", linewidths=0)
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_title(f"{label}\nPearson r = {r:.2f}", fontsize="medium")
        ax.set_xlabel("BA - CA (years)")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("BA - PBA (years)")
    fig.tight_layout()
    return fig
