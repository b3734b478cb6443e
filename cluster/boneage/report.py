"""The chapter's report from the variants' `UnitResult`s: tables 6.1-6.3 (with the reference
reader), the paired comparison with that reader, the training summary, fig. 6.4 and the plots
of the sample weights; built in a temporary folder and moved into place whole."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from cluster.boneage.config import BoneAgeJobConfig, EvaluationConfig
from cluster.boneage.data import SweepData
from cluster.units import Unit, UnitResult

REFERENCE_READER = "Radiologist"


def _write(table: pd.DataFrame, markdown: str, name: str, out_dir: Path) -> list[Path]:
    from stats.tables import Report

    report = Report(name, pa.Table.from_pandas(table, preserve_index=False), markdown)
    return list(report.write(out_dir).values())


def reader_comparison(frame: pd.DataFrame, config: EvaluationConfig) -> pd.DataFrame:
    """Per model: MAE minus the reference reader's MAE on the same exams, paired bootstrap CI
    (whole patients resampled); negative favours the model."""
    from stats import bootstrap_ci

    reader = frame[frame["model"] == REFERENCE_READER].set_index("id")
    rows = []
    for model, exams in frame[frame["model"] != REFERENCE_READER].groupby("model", sort=False):
        exams = exams.set_index("id").loc[reader.index]
        model_err = np.abs(exams["predicted"] - exams["bone_age"]).to_numpy()
        reader_err = np.abs(reader["predicted"] - reader["bone_age"]).to_numpy()
        r = bootstrap_ci(
            (model_err, reader_err),
            "paired_diff",
            config.level,
            config.method,
            config.n_resamples,
            config.seed,
            groups=reader["patient_id"].to_numpy(),
        )
        rows.append(
            {
                "model": model,
                "n": len(model_err),
                "mae_model": float(model_err.mean()),
                "mae_reader": float(reader_err.mean()),
                "diff": r.estimate,
                "ci_low": r.low,
                "ci_high": r.high,
            }
        )
    return pd.DataFrame(rows)


def report(
    config: BoneAgeJobConfig,
    units: list[Unit],
    results: dict[str, UnitResult],
    data: SweepData,
    out_dir: Path,
) -> tuple[str, list[Path]]:
    """Tables 6.1-6.3 (+ reference reader), reader comparison, training summary, fig. 6.4 and
    the weight plots, written to `out_dir`; returns the Markdown and the files. Everything is
    built in a temporary folder first, so a failure leaves no half-written report behind."""
    out_dir = Path(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        markdown, built = _build_report(config, units, results, data, tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        files = []
        for path in built:
            os.replace(path, out_dir / path.name)
            files.append(out_dir / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return markdown, files


def _frame(result: UnitResult, name: str) -> pd.DataFrame:
    return result.table(name).to_pandas()


def clinical_predictions(units: list[Unit], results: dict[str, UnitResult], clinical: pd.DataFrame):
    """Every model's clinical predictions in one frame (the reference reader first, when every
    exam has its reading); and whether it has."""
    from core.metrics.boneage import evaluation_frame

    frames = [_frame(results[u.key], "predictions.parquet") for u in units]
    has_reader = bool(np.all(np.isfinite(clinical["reader_bone_age"].to_numpy(np.float64))))
    if has_reader:
        frames.insert(0, evaluation_frame(REFERENCE_READER, clinical, clinical["reader_bone_age"]))
    return pd.concat(frames, ignore_index=True), has_reader


def _tables_section(predictions: pd.DataFrame, ev: EvaluationConfig, out_dir: Path) -> tuple[list, list]:
    from stats.tables import BONE_AGE_COLUMNS, bone_age_report

    tables = bone_age_report(
        predictions[[*BONE_AGE_COLUMNS, "patient_id"]],
        level=ev.level,
        n_resamples=ev.n_resamples,
        seed=ev.seed,
        method=ev.method,
    )
    files = list(tables.write(out_dir).values())
    return ["## Tables 6.1-6.3 (clinical evaluation set)", tables.markdown], files


def _reader_section(predictions: pd.DataFrame, ev: EvaluationConfig, out_dir: Path) -> tuple[list, list]:
    from stats.tables import markdown_table

    comp = reader_comparison(predictions, ev)
    md = markdown_table(
        ["model", "MAE model", "MAE reader", f"model - reader [{ev.level:.0%} CI]"],
        [
            [
                r.model,
                f"{r.mae_model:.2f}",
                f"{r.mae_reader:.2f}",
                f"{r.diff:+.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]",
            ]
            for r in comp.itertuples()
        ],
    )
    files = _write(comp, md, "reader_comparison", out_dir)
    return [f"## Comparison with the reference reader (paired, {ev.level:.0%} bootstrap CI)", md], files


def training_summary(units: list[Unit], results: dict[str, UnitResult]) -> pd.DataFrame:
    """Per variant: validation MAE before and after training against predicting the train mean."""
    rows = []
    for u in units:
        m, h = results[u.key].metrics, _frame(results[u.key], "history.parquet")
        last = h[h["epoch"] == h["epoch"].max()].iloc[0]
        rows.append(
            {
                "variant": u.params["label"],
                "dataset": u.params["dataset"],
                "epochs": int(last["epoch"]),
                "val_mae_initial": m.get("val_mae_initial", float("nan")),
                "val_mae_final": float(last.get("val_mae", float("nan"))),
                "val_mae_tta": m.get("val_mae_tta", float("nan")),
                "val_mae_predict_mean": m.get("val_mae_predict_mean", float("nan")),
                "clinical_mae": m["clinical_mae"],
                "resumed_from_epoch": m.get("resumed_from_epoch", 0),
            }
        )
    return pd.DataFrame(rows)


def _training_section(summary: pd.DataFrame, out_dir: Path) -> tuple[list, list]:
    from stats.tables import markdown_table

    md = markdown_table(
        ["variant", "epochs", "val MAE before", "val MAE after (TTA)", "predicting the mean", "clinical MAE"],
        [
            [
                r.variant,
                str(r.epochs),
                f"{r.val_mae_initial:.2f}",
                f"{r.val_mae_tta:.2f}",
                f"{r.val_mae_predict_mean:.2f}",
                f"{r.clinical_mae:.2f}",
            ]
            for r in summary.itertuples()
        ],
    )
    files = _write(summary, md, "training_summary", out_dir)
    return ["## Training (validation split of each training set, months)", md], files


def _offset_figure(units: list[Unit], results: dict[str, UnitResult], out_dir: Path) -> Path:
    """Fig. 6.4: BA - PBA against BA - CA, one panel per variant, with Pearson's r."""
    from core.boneage.figures import offset_scatter_figure
    from core.metrics.boneage import offset_correlation
    from stats.figures import save_figure

    panels = []
    for u in units:
        f = _frame(results[u.key], "predictions.parquet")
        ba, pred = f["bone_age"].to_numpy(), f["predicted"].to_numpy()
        ca = f["chronological_age_months"].to_numpy()
        panels.append((u.params["label"], ba - ca, ba - pred, offset_correlation(ba, pred, ca)))
    return save_figure(offset_scatter_figure(panels), out_dir / "offset_scatter.png")


def _weight_figures(
    config: BoneAgeJobConfig, units: list[Unit], data: SweepData, out_dir: Path
) -> list[Path]:
    """The sample weights, once per training set and weighting."""
    from core.boneage.figures import weights_figure
    from core.boneage.weights import LABELS
    from stats.figures import save_figure

    files = []
    for dataset, kind in sorted({(u.params["dataset"], u.params["weighting"]) for u in units}):
        if kind == "none":
            continue
        t, w = data.train[dataset], data.weights[(dataset, kind)]
        title = f"{dataset} training set: {LABELS[kind]} (alpha {config.alpha})"
        fig = weights_figure(t["bone_age"], w, kind, t["sex"], t["chronological_age"], title=title)
        files.append(save_figure(fig, out_dir / f"weights_{dataset}_{kind}.png"))
    return files


def _build_report(
    config: BoneAgeJobConfig,
    units: list[Unit],
    results: dict[str, UnitResult],
    data: SweepData,
    out_dir: Path,
) -> tuple[str, list[Path]]:
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    ev = config.evaluation
    predictions, has_reader = clinical_predictions(units, results, data.clinical)
    parts, files = _tables_section(predictions, ev, out_dir)
    parts = [f"Data: {data.note}.", f"Recipe: {config.recipe_note()}.", *parts]
    if has_reader:
        more, written = _reader_section(predictions, ev, out_dir)
        parts, files = parts + more, files + written
    more, written = _training_section(training_summary(units, results), out_dir)
    parts, files = parts + more, files + written
    files.append(_offset_figure(units, results, out_dir))
    files += _weight_figures(config, units, data, out_dir)
    predictions_path = out_dir / "clinical_predictions.parquet"
    pq.write_table(
        pa.Table.from_pandas(predictions, preserve_index=False), predictions_path, compression="zstd"
    )
    files.append(predictions_path)
    markdown = "\n\n".join(parts) + "\n"
    (out_dir / "bone_age_report.md").write_text(markdown)
    files.append(out_dir / "bone_age_report.md")
    return markdown, files
