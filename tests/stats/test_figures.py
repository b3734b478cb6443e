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


def test_regret_figure_marks_first_evaluations_and_keeps_bands_on_the_log_axis():
    from stats.regret import RegretCurve

    grid = np.geomspace(1.0, 100.0, 30)
    mean = np.linspace(0.5, 0.1, 30)
    low, high = np.where(mean >= 0.3, mean - 0.2, -0.1), mean + 0.3  # below 0 where the mean is small
    low[0] = 0.05  # the smallest positive value plotted: the floor is half of it
    wide = RegretCurve(grid, mean, low, high, np.ones(30), np.full(30, 30), 0.95)
    few = np.where(np.arange(30) >= 28, 0.3, np.nan)  # two grid points: a narrow time range
    narrow = RegretCurve(grid, few, np.full(30, np.nan), np.full(30, np.nan), np.ones(30), np.zeros(30), 0.95)
    starts = {"WS": (np.array([8.0, 12.0]), np.array([0.3, 0.0]))}
    fig = regret_figure({"BS": wide, "WS": narrow}, starts=starts)
    ax = fig.axes[0]
    assert ax.lines[0].get_marker() == "None" and ax.lines[1].get_marker() == "o"  # 2 points: markers
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.025) and band.max() == pytest.approx(0.8)  # floor: half of 0.05
    marks = ax.collections[-1].get_offsets()
    np.testing.assert_allclose(marks, [[8.0, 0.3], [12.0, 0.025]])  # a regret of 0 drawn at the floor
