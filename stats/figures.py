"""The thesis' figures with matplotlib (Agg backend, no display needed).

- regret_figure: regret vs time on log-log axes, mean per method with its CI band, each run's
  first evaluation as a marker (fig. 4.2);
- proxy_scatter_figure: proxy vs true accuracy with marginal histograms and an optional
  highlighted sub-population (figs. 4.3 / 4.4).

Each returns a matplotlib Figure (the plotted data can be inspected); save_figure writes a PNG.
Figures are built with the object API on an Agg canvas, never through pyplot: no window, no global
backend switch, nothing to close, safe in worker processes. Log axes cannot show a regret of
exactly 0 (the best cell found): matplotlib leaves those points out of the line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from stats._checks import as_bool_vector, as_vector, same_length
from stats.regret import RegretCurve


def _figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def regret_figure(
    curves: dict[str, RegretCurve],
    title: str | None = None,
    xlabel: str = "time (simulated seconds)",
    ylabel: str = "test regret",
    loglog: bool = True,
    starts: dict | None = None,
) -> Figure:
    """One line per method (its mean regret) with a shaded CI band, on log-log axes by default.

    `curves`: method -> RegretCurve (stats.regret.regret_curves; with all_started=True a mean
    starts once every run has its first evaluation). `starts`: method -> (times, regrets) of each
    run's first evaluation, drawn as markers in the method's colour (a WS run's one-shot pick).
    A curve with a dozen points or fewer (a narrow time range on the grid) is drawn with markers,
    so it stays visible. On log axes a CI band's lower edge at or below zero is drawn at half the
    smallest positive value plotted, so the band does not fall off the axis. The x label should
    say which clock the curves use (steps, simulated or measured seconds).
    """
    if not curves:
        raise ValueError("curves is empty: nothing to plot")
    for name, curve in curves.items():
        if not isinstance(curve, RegretCurve):
            raise ValueError(f"curves[{name!r}] is a {type(curve).__name__}, expected a RegretCurve")
    floor = _log_floor(curves, starts) if loglog else None
    fig = _figure((6.4, 4.4))
    ax = fig.subplots()
    for name, curve in curves.items():
        few = 0 < int(np.isfinite(curve.mean).sum()) <= 12
        (line,) = ax.plot(
            curve.grid, curve.mean, label=str(name), linewidth=1.5, marker="o" if few else None, markersize=3
        )
        low = curve.ci_low
        if floor is not None:
            low = np.where(np.isfinite(low) & (low <= 0), floor, low)
        ax.fill_between(curve.grid, low, curve.ci_high, color=line.get_color(), alpha=0.25, linewidth=0)
        if starts and name in starts:
            times, regrets = (np.asarray(v, dtype=np.float64) for v in starts[name])
            shown = np.maximum(regrets, floor) if floor is not None else regrets
            ax.scatter(times, shown, marker="x", s=14, color=line.get_color(), linewidths=0.8, zorder=3)
    if loglog:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    level = next(iter(curves.values())).level
    legend = f"mean, {level:.0%} CI" + ("; x: first evaluations" if starts else "")
    ax.legend(title=legend, fontsize="small", title_fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def _log_floor(curves: dict[str, RegretCurve], starts: dict | None) -> float:
    """Half the smallest positive value a regret figure plots (1e-6 when none is positive)."""
    values = [np.asarray(c.mean) for c in curves.values()] + [np.asarray(c.ci_low) for c in curves.values()]
    values += [np.asarray(r, dtype=np.float64) for _, r in (starts or {}).values()]
    flat = np.concatenate([v.ravel() for v in values]) if values else np.zeros(0)
    positive = flat[np.isfinite(flat) & (flat > 0)]
    return float(positive.min() / 2) if len(positive) else 1e-6


def proxy_scatter_figure(
    target,
    proxy,
    highlight=None,
    highlight_label: str = "highlighted",
    title: str | None = None,
    xlabel: str = "true validation accuracy",
    ylabel: str = "proxy accuracy",
    bins: int = 40,
) -> Figure:
    """Scatter of proxy (y) against true (x) accuracy with marginal histograms of both.

    `highlight` (booleans, one per point) draws a sub-population in a darker tone, and its own
    marginal histograms, e.g. cells with a residual connection (fig. 4.4). The scatter is the
    figure's first axes, the top histogram (true accuracy) the second, the right one (proxy) the third.
    """
    x, y = as_vector(target, "target"), as_vector(proxy, "proxy")
    same_length("target", x, "proxy", y)
    mask = None if highlight is None else as_bool_vector(highlight, "highlight")
    if mask is not None:
        same_length("target", x, "highlight", mask)

    fig = _figure((6.4, 6.4))
    grid = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4), wspace=0.05, hspace=0.05)
    ax = fig.add_subplot(grid[1, 0])
    top = fig.add_subplot(grid[0, 0], sharex=ax)
    right = fig.add_subplot(grid[1, 1], sharey=ax)

    base = "#9ecae1" if mask is not None else "#3182bd"
    ax.scatter(x, y, s=6, color=base, alpha=0.6, linewidths=0, label="all" if mask is not None else None)
    x_bins = np.histogram_bin_edges(x, bins)
    y_bins = np.histogram_bin_edges(y, bins)
    top.hist(x, bins=x_bins, color=base, alpha=0.8)
    right.hist(y, bins=y_bins, color=base, alpha=0.8, orientation="horizontal")
    if mask is not None and mask.any():
        ax.scatter(x[mask], y[mask], s=6, color="#08306b", alpha=0.8, linewidths=0, label=highlight_label)
        top.hist(x[mask], bins=x_bins, color="#08306b", alpha=0.8)
        right.hist(y[mask], bins=y_bins, color="#08306b", alpha=0.8, orientation="horizontal")
        ax.legend(fontsize="small", markerscale=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    top.tick_params(axis="x", labelbottom=False)
    right.tick_params(axis="y", labelleft=False)
    top.set_yticks([])
    right.set_xticks([])
    if title:
        top.set_title(title)
    return fig


def save_figure(fig: Figure, path, dpi: int = 150) -> Path:
    """Save `fig` as PNG at `path` (folders created), return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, format="png")
    return out
