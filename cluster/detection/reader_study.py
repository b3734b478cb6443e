"""The reader study (thesis 2.4, table 2.1, fig. 2.3) as a job: its config, its analysis and
its MLflow record.

`tables()` builds table 2.1 overall, by reader group and by body part, and the difference in gain
between two groups; `write_outputs()` adds every reader's metrics, the ROC/FROC figure with the
readers' points and the AI's standalone numbers; `log_readers()` logs one child run per reader and
condition. Input formats: core/detection/reader_study.py.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from cluster.scheduler import Outcome
from cluster.units import UnitResult
from core.config import Config
from core.keys import stable_key
from core.metrics.detection import CH5_FP_RANGE, IOU_THRESHOLD, match_boxes
from core.metrics.readers import EXTRA_METRICS, LOWER_IS_BETTER, READING_TIME, TABLE_METRICS, paired_readers

ANALYSIS_VERSION = 1
INPUTS = ("markers", "truth", "images", "ai_detections")


class ReaderStudyConfig(Config):
    experiment: str = "reader-study"
    sweep_name: str = "reader-study"
    markers: str | None = Field(None, description="CSV/Parquet of markers; None: the embedded example")
    truth: str | None = Field(None, description="COCO JSON, or CSV/Parquet of regions (with images)")
    images: str | None = Field(None, description="CSV/Parquet of every image (with a regions table)")
    ai_detections: str | None = Field(None, description="CSV/Parquet of the AI's boxes (ROC/FROC)")
    example_seed: int = 0
    level: float = Field(0.95, gt=0, lt=1)
    by_group: bool = True
    by_body_part: bool = True
    iou_threshold: float = Field(IOU_THRESHOLD, gt=0, lt=1)
    froc_fp_range: tuple[float, float] = CH5_FP_RANGE
    tracking_uri: str | None = None
    output_dir: str = "outputs/reader_study"

    @field_validator(*INPUTS)
    @classmethod
    def _exists(cls, value):
        if value is not None and not Path(value).is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @model_validator(mode="after")
    def _pairs(self):
        if (self.markers is None) != (self.truth is None):
            raise ValueError("markers, truth: give both (or neither for the embedded example)")
        if self.markers is None and (self.images or self.ai_detections):
            raise ValueError("images, ai_detections: only with markers and truth")
        return self


def load_study(config: ReaderStudyConfig):
    """The study of the config's files, or the embedded simulated example without them."""
    from core.detection.reader_study import example_reader_study, load_reader_study

    if config.markers is None:
        return example_reader_study(config.example_seed)
    return load_reader_study(config.markers, config.truth, config.images, config.ai_detections)


def metric_key(name: str) -> str:
    """A table metric name as an MLflow metric key: 'SE_pw (%)' -> 'SE_pw_pct'."""
    name = name.replace("(%)", "pct").replace("(s)", "s").replace("no fract", "nofract")
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_.-]+", "_", name)).strip("_")


def inputs_key(config: ReaderStudyConfig) -> str:
    """The analysis' identity: the input files' bytes and every setting that changes a number."""
    digest = hashlib.sha256()  # the files' contents (bytes, not a JSON value)
    for name in INPUTS:
        path = getattr(config, name)
        digest.update(name.encode() + (Path(path).read_bytes() if path else b"-"))
    settings = config.model_dump(exclude={"tracking_uri", "output_dir", *INPUTS})
    return stable_key({"files": digest.hexdigest(), "settings": settings, "version": ANALYSIS_VERSION})


def _readers_report(config: ReaderStudyConfig, rows: pd.DataFrame):
    from stats.tables import readers_report

    lower = [m for m in LOWER_IS_BETTER if m in set(rows["metric"])]
    return readers_report(rows, lower_is_better=lower, level=config.level)


def _combined(name: str, column: str, parts: list):
    """Per-part reports stacked into one table (a `column` naming the part) and one markdown."""
    from stats.tables import Report

    frames, text = [], []
    for label, report in parts:
        frame = report.table.to_pandas()
        frame.insert(0, column, label)
        frames.append(frame)
        text.append(f"### {column} = {label}\n\n" + report.markdown.split("\n\n", 1)[1])
    table = pa.Table.from_pandas(pd.concat(frames, ignore_index=True), preserve_index=False)
    return Report(name, table, "\n\n".join(text))


def tables(config: ReaderStudyConfig, long: pd.DataFrame) -> list:
    """Table 2.1 overall, by reader group and by body part, and the between-group gain comparison."""
    from stats.tables import Report

    thesis_rows = long[long["metric"].isin([*TABLE_METRICS, READING_TIME])]
    extra_rows = long[long["metric"].isin(list(EXTRA_METRICS))]
    overall = _readers_report(config, paired_readers(thesis_rows, "all"))
    reports = [Report("table_2_1", overall.table, overall.markdown)]
    extra = paired_readers(extra_rows, "all")
    if len(extra):
        r = _readers_report(config, extra)
        note = "Other metrics (FPP_pw over all exams, image-wise SE/SPE of eq. 2.1). "
        reports.append(Report("reader_metrics_extra", r.table, note + r.markdown))
    long = thesis_rows
    if config.by_group and long["group"].notna().any():
        parts, groups = [], {}
        for group, readers in long.groupby("group")["reader"]:
            groups[group] = sorted(set(readers))
            rows = paired_readers(long, "all", groups[group])
            if len(rows):
                parts.append((group, _readers_report(config, rows)))
        if parts:
            reports.append(_combined("table_2_1_by_group", "group", parts))
        if len(groups) == 2:
            gain = gain_by_group(config, long, groups)
            if gain is not None:
                reports.append(gain)
    if config.by_body_part:
        parts = []
        for scope in sorted(s for s in long["scope"].unique() if s.startswith("body_part=")):
            rows = paired_readers(long, scope)
            if len(rows):
                parts.append((scope.split("=", 1)[1], _readers_report(config, rows)))
        if parts:
            reports.append(_combined("table_2_1_by_body_part", "body_part", parts))
    return reports


def gain_by_group(config: ReaderStudyConfig, long: pd.DataFrame, groups: dict):
    """Does the AI help one group more? Gain = aided - unaided per reader, the two groups'
    gains compared by a two-sided Student t-test; None when no metric has 2 readers per group."""
    from stats import compare
    from stats.tables import Report, markdown_table

    (g1, r1), (g2, r2) = sorted(groups.items())
    wide = paired_readers(long, "all").pivot_table(
        index=["metric", "reader"], columns="condition", values="value"
    )
    gain = (wide["aided"] - wide["unaided"]).rename("gain").reset_index()
    rows, body = [], []
    order = list(dict.fromkeys(long["metric"]))  # table 2.1's order
    for metric in sorted(set(gain["metric"]), key=order.index):
        g = gain[gain["metric"] == metric]
        a, b = g[g.reader.isin(r1)]["gain"].to_numpy(), g[g.reader.isin(r2)]["gain"].to_numpy()
        if len(a) < 2 or len(b) < 2:
            continue
        r = compare(a, b, level=config.level)
        rows.append(
            {
                "metric": metric,
                "group_a": g1,
                "group_b": g2,
                "gain_a": r.mean_a,
                "gain_b": r.mean_b,
                "diff": r.mean_diff,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "pvalue": r.pvalue,
            }
        )
        scale = max(abs(r.mean_a), abs(r.mean_b), 1e-12)
        dec = max(0, 2 - math.floor(math.log10(scale)))  # 3 significant digits of the larger gain
        body.append(
            [
                metric,
                f"{r.mean_a:+.{dec}f}",
                f"{r.mean_b:+.{dec}f}",
                f"{r.mean_diff:+.{dec}f} [{r.ci_low:.{dec}f}, {r.ci_high:.{dec}f}]",
                f"{r.pvalue:.2g}",
            ]
        )
    if not rows:
        return None
    title = (
        f"Gain with the AI (aided - unaided) by reader group, {g1} - {g2}: two-sided Student "
        f"t-test, {config.level:.0%} CI.\n\n"
    )
    header = ["Metric", f"gain {g1}", f"gain {g2}", "Difference", "p"]
    return Report("gain_by_group", pa.Table.from_pylist(rows), title + markdown_table(header, body))


def reader_points(long: pd.DataFrame) -> pd.DataFrame:
    """Each reader's operating point per condition (fractions), for the ROC/FROC figure."""
    points = long[
        (long["scope"] == "all") & long["metric"].isin(["SE_pw (%)", "SPE_pw (%)", "SE_fw (%)", "FPP_pw"])
    ]
    wide = points.pivot_table(
        index=["reader", "group", "condition"], values="value", columns="metric"
    ).reset_index()
    wide = wide.rename(
        columns={"SE_pw (%)": "se_pw", "SPE_pw (%)": "spe_pw", "SE_fw (%)": "se_fw", "FPP_pw": "fpp_pw"}
    )
    for column in ("se_pw", "spe_pw", "se_fw"):
        wide[column] = wide[column] / 100.0
    return wide


def write_outputs(config: ReaderStudyConfig, study, long: pd.DataFrame, reports: list, out_dir: Path):
    """The reports, every reader's metrics and fig. 2.3 in `out_dir`; (files, parent metrics)."""
    import pyarrow.parquet as pq

    from core.detection.figures import roc_froc_figure
    from stats.figures import save_figure

    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for report in reports:
        files += list(report.write(out_dir).values())
    long.to_csv(out_dir / "reader_metrics.csv", index=False)
    pq.write_table(pa.Table.from_pandas(long, preserve_index=False), out_dir / "reader_metrics.parquet")
    files += [out_dir / "reader_metrics.csv", out_dir / "reader_metrics.parquet"]
    curves, summary = {}, {}
    if study.ai_detections is not None:
        matching = match_boxes(study.truth, study.ai_detections, config.iou_threshold)
        curves["AI"] = matching.curves()
        summary["ai_roc_auc"] = curves["AI"].roc().auc()
        summary["ai_aufroc_patient"] = curves["AI"].froc("patient").area(config.froc_fp_range)
        print(
            f"AI standalone: ROC AUC {summary['ai_roc_auc']:.3f}, AUFROC (FP/patient {config.froc_fp_range}) "
            f"{summary['ai_aufroc_patient']:.3f}"
        )
    fig = roc_froc_figure(
        curves,
        readers=reader_points(long),
        fp_per="patient",
        fp_range=config.froc_fp_range,
        title="Readers unaided (open) and aided (filled)"
        + (" - simulated example" if study.embedded else ""),
    )
    files.append(save_figure(fig, out_dir / "reader_study_roc_froc.png"))
    return files, summary | table_metrics(reports[0])


def table_metrics(overall) -> dict[str, float]:
    """Table 2.1 as the parent run's metrics: `<column>.<metric key>`."""
    out = {}
    for row in overall.table.to_pandas().itertuples(index=False):
        key = metric_key(row.metric)
        out |= {
            f"unaided_mean.{key}": row.unaided_mean,
            f"aided_mean.{key}": row.aided_mean,
            f"diff.{key}": row.diff,
            f"ci_low.{key}": row.ci_low,
            f"ci_high.{key}": row.ci_high,
            f"pvalue.{key}": row.pvalue,
        }
    return out


def log_readers(
    tracker, parent_run_id: str, analysis_key: str, long: pd.DataFrame, window: tuple[int, int] | None = None
) -> Outcome:
    """One child run per reader and condition with its metrics; children the parent already has
    are kept. Logged from the driver, not through run_graph: each child is one small write of
    numbers the analysis already holds, so no Ray is started and nothing is read back. One pass
    (`reader_metrics_table`) computed every reader's numbers: each run spans that pass (`window`,
    its start and end in ms), not the moment it was logged."""
    finished = tracker.finished_units(parent_run_id)
    results, ran, skipped = {}, set(), {}
    for (reader, condition), rows in long[long["scope"] == "all"].groupby(["reader", "condition"], sort=True):
        key = stable_key({"analysis": analysis_key, "reader": reader, "condition": condition})
        metrics = {metric_key(m): v for m, v in zip(rows["metric"], rows["value"])}
        metrics["n_studies"] = float(rows["n_studies"].iloc[0])
        if key in finished:
            skipped[key] = finished[key]
            results[key] = UnitResult(key, finished[key], metrics, reused=True)
            continue
        run_id = tracker.log_unit(
            parent_run_id,
            key,
            f"{reader}/{condition}",
            params={"reader": reader, "condition": condition, "group": rows["group"].iloc[0]},
            metrics=metrics,
            tags={"reader": reader, "condition": condition},
            started_ms=window[0] if window else None,
            ended_ms=window[1] if window else None,
        )
        results[key], ran = UnitResult(key, run_id, metrics), ran | {key}
    return Outcome(results, ran, skipped)
