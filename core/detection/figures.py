"""Figure 2.3: ROC and FROC curves of detectors, with the readers' points unaided and aided.

Object API on an Agg canvas (as stats.figures): no window, safe in workers. Save with
stats.figures.save_figure. A thin line joins the unaided and aided points of the same reader.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from core.detection.operating_points import OperatingPoints
from core.metrics.detection import DetectionCurves

MARKERS = {"unaided": dict(marker="o", facecolors="none"), "aided": dict(marker="o")}


def roc_froc_figure(
    curves: dict[str, DetectionCurves],
    readers: pd.DataFrame | None = None,
    fp_per: str = "patient",
    fp_range: tuple[float, float] | None = None,
    operating_points: dict[str, OperatingPoints] | None = None,
    title: str | None = None,
) -> Figure:
    """Left: ROC (SE_pw against 1 - SPE_pw); right: FROC (SE_fw against FPs per patient or image).

    curves: label -> DetectionCurves of a detector. readers: rows (reader, condition, se_pw,
    spe_pw, se_fw, fpp_pw[, group]) with condition 'unaided' or 'aided', fractions not percents.
    operating_points: label -> OperatingPoints, drawn on that label's curves. fp_range: shaded on
    the FROC (the AUFROC's integration range)."""
    fig = Figure(figsize=(11, 4.8))
    FigureCanvasAgg(fig)
    roc_ax, froc_ax = fig.subplots(1, 2)
    x_max, reader_max = 1.0, 0.0
    for label, c in curves.items():
        roc = c.roc()
        (line,) = roc_ax.plot(
            np.append(roc.fpr, 1.0), np.append(roc.tpr, 1.0), label=f"{label} (AUC {roc.auc():.3f})"
        )
        froc = c.froc(fp_per)
        froc_ax.plot(froc.fp, froc.sensitivity, color=line.get_color(), label=label)
        x_max = max(x_max, float(np.nanmax(froc.fp)) if len(froc.fp) else 0.0)
        ops = (operating_points or {}).get(label)
        for point in (ops.doubt, ops.fracture) if ops else ():
            k = int(np.searchsorted(-c.thresholds, -point.threshold, side="right") - 1)
            k = min(max(k, 0), len(c.thresholds) - 1)
            style = dict(
                color=line.get_color(), marker="s" if point.name == "FRACTURE" else "D", s=40, zorder=4
            )
            roc_ax.scatter(1 - c.spe_pw[k], c.se_pw[k], **style)
            fp_k = float((c.fpp_pw if fp_per == "patient" else c.fp_per_image)[k])
            froc_ax.scatter(fp_k, c.se_fw[k], **style)
            reader_max = max(reader_max, fp_k)  # keep the operating points in view too
            roc_ax.annotate(
                point.name,
                (1 - c.spe_pw[k], c.se_pw[k]),
                fontsize=7,
                xytext=(4, -10),
                textcoords="offset points",
            )
    if readers is not None and len(readers):
        groups = list(dict.fromkeys(readers["group"])) if "group" in readers else [None]
        colours = dict(zip(groups, ["#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]))
        for _reader, rows in readers.groupby("reader", sort=False):
            by = {r["condition"]: r for r in rows.to_dict("records")}
            colour = colours.get(rows["group"].iloc[0] if "group" in rows else None, "#d62728")
            if {"unaided", "aided"} <= set(by):
                u, a = by["unaided"], by["aided"]
                roc_ax.plot(
                    [1 - u["spe_pw"], 1 - a["spe_pw"]], [u["se_pw"], a["se_pw"]], color=colour, lw=0.6
                )
                froc_ax.plot([u["fpp_pw"], a["fpp_pw"]], [u["se_fw"], a["se_fw"]], color=colour, lw=0.6)
            for condition, r in by.items():
                style = dict(edgecolors=colour, s=28, zorder=5, **MARKERS.get(condition, {}))
                if condition == "aided":
                    style["color"] = colour
                roc_ax.scatter(1 - r["spe_pw"], r["se_pw"], **style)
                froc_ax.scatter(r["fpp_pw"], r["se_fw"], **style)
                reader_max = max(reader_max, float(r["fpp_pw"]))
        for group, colour in colours.items():
            name = "readers" if group is None else str(group)
            roc_ax.scatter([], [], edgecolors=colour, facecolors="none", label=f"{name} unaided")
            roc_ax.scatter([], [], color=colour, label=f"{name} aided")
    if fp_range is not None:
        froc_ax.axvspan(
            *fp_range, color="0.9", zorder=0, label=f"AUFROC range {fp_range[0]:g}-{fp_range[1]:g}"
        )
    roc_ax.plot([0, 1], [0, 1], color="0.7", lw=0.5, ls=":")
    roc_ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - SPE_pw", ylabel="SE_pw", title="ROC (patient-wise)")
    # the readers' and operating points' range matters, not the detector's lowest thresholds
    shown = max(1.0, 2 * fp_range[1] if fp_range else 0.0, 1.2 * reader_max)
    froc_ax.set(
        xlim=(0, min(x_max * 1.05, shown)),
        ylim=(0, 1.01),
        xlabel="false positives per " + ("patient (FPP_pw)" if fp_per == "patient" else "image"),
        ylabel="SE_fw",
        title="FROC",
    )
    for ax in (roc_ax, froc_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small", loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
