"""Figures: the PNG is written and not blank, and the plotted data are the computed statistics."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from stats import regret_curves
from stats.figures import proxy_scatter_figure, regret_figure, save_figure


def _assert_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    pixels = imread(path)
    assert pixels.std() > 0.05  # not a blank canvas


def test_regret_figure(tmp_path, trajectories):
    curves = regret_curves(trajectories[trajectories.space == "A1"], by="method")
    fig = regret_figure(curves, title="A1", xlabel="time (simulated s)")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.lines] == list(curves)
    for line, curve in zip(ax.lines, curves.values()):
        np.testing.assert_array_equal(line.get_xdata(), curve.grid)
        np.testing.assert_array_equal(line.get_ydata(), curve.mean)
    assert len(ax.collections) == len(curves)  # one CI band per method
    band = ax.collections[0].get_paths()[0].vertices
    finite = np.isfinite(curves["RS_bs"].ci_high)
    assert band[:, 1].max() == pytest.approx(np.nanmax(curves["RS_bs"].ci_high[finite]))
    _assert_png(save_figure(fig, tmp_path / "figs" / "regret.png"))


def test_proxy_scatter_figure(tmp_path):
    rng = np.random.default_rng(0)
    target = rng.normal(0.9, 0.02, 1000)
    residual = rng.random(1000) < 0.3
    proxy = target + rng.normal(0, 0.01, 1000) + 0.02 * residual
    fig = proxy_scatter_figure(target, proxy, highlight=residual, highlight_label="residual")
    scatter, top, right = fig.axes
    everyone, highlighted = scatter.collections
    np.testing.assert_array_equal(everyone.get_offsets(), np.column_stack([target, proxy]))
    np.testing.assert_array_equal(
        highlighted.get_offsets(), np.column_stack([target[residual], proxy[residual]])
    )
    heights = [p.get_height() for p in top.patches]
    counts, _ = np.histogram(target, bins=40)
    np.testing.assert_array_equal(heights[:40], counts)
    sub_counts, _ = np.histogram(target[residual], bins=np.histogram_bin_edges(target, 40))
    np.testing.assert_array_equal(heights[40:], sub_counts)
    widths = [p.get_width() for p in right.patches[:40]]
    np.testing.assert_array_equal(widths, np.histogram(proxy, bins=40)[0])
    _assert_png(save_figure(fig, tmp_path / "scatter.png"))


def test_figure_input_errors():
    with pytest.raises(ValueError, match="curves is empty"):
        regret_figure({})
    with pytest.raises(ValueError, match="same length"):
        proxy_scatter_figure([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="same length"):
        proxy_scatter_figure([1.0, 2.0], [1.0, 2.0], highlight=[True])
