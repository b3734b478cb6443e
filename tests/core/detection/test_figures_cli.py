"""Figure 2.3 draws the data it is given; the command line scores a detections file."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.detection.figures import roc_froc_figure
from core.metrics.detection import GroundTruth, match_boxes


def test_roc_froc_figure_plots_curves_and_reader_pairs():
    truth = GroundTruth.from_tables(
        {"study_id": ["P", "N"], "image_id": ["i", "i"]},
        {"study_id": ["P"], "image_id": ["i"], "x0": [0], "y0": [0], "x1": [10], "y1": [10]},
    )
    boxes = {
        "study_id": ["P", "N"],
        "image_id": ["i", "i"],
        "x0": [0, 0],
        "y0": [0, 0],
        "x1": [10, 5],
        "y1": [10, 5],
        "score": [0.9, 0.4],
    }
    curves = match_boxes(truth, boxes).curves()
    readers = pd.DataFrame(
        [
            ("R1", "radiologist", "unaided", 0.6, 0.9, 0.7, 0.1),
            ("R1", "radiologist", "aided", 0.8, 0.95, 0.85, 0.05),
            ("R2", "emergency doctor", "unaided", 0.5, 0.8, 0.6, 0.2),
            ("R2", "emergency doctor", "aided", 0.7, 0.9, 0.75, 0.1),
        ],
        columns=["reader", "group", "condition", "se_pw", "spe_pw", "se_fw", "fpp_pw"],
    )
    fig = roc_froc_figure({"AI": curves}, readers=readers, fp_range=(0.02, 0.5))
    roc_ax, froc_ax = fig.axes
    ai = roc_ax.lines[0]
    assert np.allclose(ai.get_xdata(), [0, 0, 1, 1]) and np.allclose(ai.get_ydata(), [0, 1, 1, 1])
    assert "AUC 1.000" in ai.get_label()
    pairs = [line for line in roc_ax.lines if line.get_linewidth() == 0.6]  # one thin line per reader
    assert sorted(tuple(np.round(p.get_xdata(), 3)) for p in pairs) == [(0.1, 0.05), (0.2, 0.1)]
    froc_points = np.vstack([c.get_offsets() for c in froc_ax.collections if len(c.get_offsets())])
    assert {(0.1, 0.7), (0.05, 0.85), (0.2, 0.6), (0.1, 0.75)} <= {tuple(np.round(p, 3)) for p in froc_points}


def test_cli_synthetic_then_evaluate_a_perfect_detector(tmp_path, capsys):
    from core.detection.cli import main

    assert main(["synthetic", "--out", str(tmp_path), "--studies", "10", "--size", "48", "--seed", "4"]) == 0
    import json

    doc = json.loads((tmp_path / "annotations.json").read_text())
    study = {im["id"]: (im["study_id"], str(im["id"])) for im in doc["images"]}
    rows = [
        (
            *study[a["image_id"]],
            a["bbox"][0],
            a["bbox"][1],
            a["bbox"][0] + a["bbox"][2],
            a["bbox"][1] + a["bbox"][3],
            0.9,
        )
        for a in doc["annotations"]
    ]
    pd.DataFrame(rows, columns=["study_id", "image_id", "x0", "y0", "x1", "y1", "score"]).to_csv(
        tmp_path / "d.csv", index=False
    )
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--coco",
                str(tmp_path / "annotations.json"),
                "--detections",
                str(tmp_path / "d.csv"),
            ]
        )
        == 0
    )
    printed = dict(line.split() for line in capsys.readouterr().out.strip().splitlines())
    assert float(printed["roc_auc"]) == 1.0 and float(printed["aufroc_image_0.02_0.5"]) == 1.0
    assert main(["evaluate", "--coco", str(tmp_path / "none.json"), "--detections", "x.csv"]) == 2
    assert "COCO file not found" in capsys.readouterr().err
