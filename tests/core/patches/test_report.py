"""Trajectory and table 5.1 from records; figs. 5.1 and 5.2 plot what they are given."""

from __future__ import annotations

import numpy as np
import pytest

from core.patches.figures import score_by_evaluation, score_by_parameters
from core.patches.report import figures, table_markdown, top_networks, trajectory_frame, trajectory_summary

RECORDS = [
    {
        "index": 0,
        "key": "a",
        "genome": [3] * 45,
        "aufroc_val": 0.5,
        "params": 7.6e6,
        "cached": False,
        "attempts": 1,
    },
    {
        "index": 1,
        "key": "b",
        "genome": [4] * 5 + [3] * 40,
        "aufroc_val": 0.7,
        "params": 5e6,
        "cached": False,
        "attempts": 2,
        "failed_on": [0],
    },
    {
        "index": 2,
        "key": "a",
        "genome": [3] * 45,
        "aufroc_val": 0.5,
        "params": 7.6e6,
        "cached": True,
        "attempts": 0,
    },
    {
        "index": 3,
        "key": "c",
        "genome": [2] * 5 + [3] * 40,
        "aufroc_val": 0.7,
        "params": 3e6,
        "cached": False,
        "attempts": 1,
    },
    {"index": 4, "key": "d"},  # asked, not told yet: not in the trajectory
]


def test_trajectory_and_top_networks():
    t = trajectory_frame(RECORDS)
    assert t["index"].tolist() == [0, 1, 2, 3] and t["failed_on"].tolist() == ["", "0", "", ""]
    top = top_networks(t, 3)
    assert top["key"].tolist() == ["b", "c", "a"]  # distinct networks; a tie goes to the earliest
    s = trajectory_summary(t)
    assert (s["evaluations"], s["evaluations_cached"], s["distinct_networks"], s["candidates_retried"]) == (
        4,
        1,
        3,
        1,
    )
    assert (s["start_aufroc_val"], s["best_aufroc_val"], s["best_index"]) == (0.5, 0.7, 1)


def test_figures_plot_the_trajectory(tmp_path):
    t = trajectory_frame(RECORDS)
    fig = score_by_evaluation(t["index"], t["aufroc_val"])
    ax = fig.axes[0]
    star = [c for c in ax.collections if len(c.get_offsets()) == 1][0]
    assert star.get_offsets().tolist() == [[0.0, 0.5]]
    assert sorted(line.get_ydata()[0] for line in ax.lines) == [0.5, 0.7]  # start (red) and best (green)
    fig2 = score_by_parameters(t["params"], t["aufroc_val"], t["index"] == 0)
    assert np.allclose(fig2.axes[0].collections[0].get_offsets()[:, 0], [7.6, 5, 7.6, 3])
    paths = figures(t, tmp_path)
    assert all(p.stat().st_size > 5_000 for p in paths)
    with pytest.raises(ValueError, match="equally long"):
        score_by_evaluation([0, 1], [0.5])


def test_table_markdown():
    import pandas as pd

    table = pd.DataFrame(
        [
            {
                "network": "FractNet",
                "aufroc_test": 0.754,
                "aufroc_val": 0.76,
                "params": 6.4e6,
                "macs": 5.6e8,
                "macs_reference": 5.6e8,
                "weights": "OFA ImageNet supernet",
                "arch": "x",
                "run_id": "r",
            }
        ]
    )
    md = table_markdown(table, 236, 224, "note")
    assert "| FractNet | 0.754 | 0.760 | 6.40M | 0.560B | 0.560B | OFA ImageNet supernet |" in md
    assert md.endswith("note") and "#MAdds@224" in md
