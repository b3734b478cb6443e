"""Reader study (thesis 2.4, table 2.1, fig. 2.3): readers with and without the AI, compared.

Usage:
    python jobs/reader_study.py                                  # embedded simulated example
    python jobs/reader_study.py --markers markers.csv --truth regions.csv --images images.csv
        [--ai-detections ai.csv] [--config FILE] [--tracking-uri URI] [--output-dir DIR]
        [--set KEY=VALUE ...]
    python jobs/reader_study.py --markers markers.parquet --truth exams_coco.json

Input formats: core/detection/reader_study.py. Without --markers it analyses a small example
study simulated by this project (not real readers), and says so. Output in --output-dir and
as artifacts of one MLflow parent run (one child per reader and condition): table 2.1
(table_2_1.md/.csv/.parquet: per metric, unaided and aided mean ± SD over readers, the
aided - unaided difference with its 95% CI and the one-sided paired t-test p), the same by reader
group and by body part, the difference in gain between groups, every reader's metrics
(reader_metrics.csv/.parquet), and the ROC/FROC figure with the readers' points
(reader_study_roc_froc.png).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from pydantic import Field, field_validator, model_validator  # noqa: E402

from cluster.jobkit import fail, tracking_uri  # noqa: E402
from cluster.tracking import Tracker  # noqa: E402
from core.config import Config, ConfigError, load_config, parse_override  # noqa: E402
from core.detection.reader_study import ReaderStudyError, example_reader_study, load_reader_study  # noqa: E402
from core.keys import stable_key  # noqa: E402
from core.metrics.detection import CH5_FP_RANGE, IOU_THRESHOLD, match_boxes  # noqa: E402
from core.metrics.readers import (  # noqa: E402
    CONDITIONS,
    EXTRA_METRICS,
    LOWER_IS_BETTER,
    READING_TIME,
    TABLE_METRICS,
    paired_readers,
    reader_metrics_table,
)

ANALYSIS_VERSION = 1


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

    @field_validator("markers", "truth", "images", "ai_detections")
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


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--config", help="ReaderStudyConfig keys: a YAML/JSON file, or env:NAME (JSON in a variable)"
    )
    p.add_argument("--markers")
    p.add_argument("--truth")
    p.add_argument("--images")
    p.add_argument("--ai-detections")
    p.add_argument("--tracking-uri")
    p.add_argument("--output-dir")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other config key")
    return p.parse_args(argv)


def resolve_config(args) -> ReaderStudyConfig:
    keys = ("markers", "truth", "images", "ai_detections", "tracking_uri", "output_dir")
    overrides = {k: getattr(args, k) for k in keys}
    overrides.update(dict(parse_override(s) for s in args.set))
    return load_config(ReaderStudyConfig, args.config, overrides)


def metric_key(name: str) -> str:
    """A table metric name as an MLflow metric key: 'SE_pw (%)' -> 'SE_pw_pct'."""
    name = name.replace("(%)", "pct").replace("(s)", "s").replace("no fract", "nofract")
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_.-]+", "_", name)).strip("_")


def _inputs_key(config: ReaderStudyConfig) -> str:
    digest = hashlib.sha256()
    for name in ("markers", "truth", "images", "ai_detections"):
        path = getattr(config, name)
        digest.update(name.encode() + (Path(path).read_bytes() if path else b"-"))
    settings = config.model_dump(
        exclude={"tracking_uri", "output_dir", "markers", "truth", "images", "ai_detections"}
    )
    return stable_key({"files": digest.hexdigest(), "settings": settings, "version": ANALYSIS_VERSION})


def tables(config: ReaderStudyConfig, long: pd.DataFrame) -> list:
    """Table 2.1 overall, by reader group and by body part, and the between-group gain comparison."""
    from stats import compare
    from stats.tables import Report, markdown_table, readers_report

    def build(rows: pd.DataFrame):
        lower = [m for m in LOWER_IS_BETTER if m in set(rows["metric"])]
        return readers_report(rows, lower_is_better=lower, level=config.level)

    thesis_rows = long[long["metric"].isin([*TABLE_METRICS, READING_TIME])]
    extra_rows = long[long["metric"].isin(list(EXTRA_METRICS))]
    overall = build(paired_readers(thesis_rows, "all"))
    reports = [Report("table_2_1", overall.table, overall.markdown)]
    extra = paired_readers(extra_rows, "all")
    if len(extra):
        r = build(extra)
        reports.append(
            Report(
                "reader_metrics_extra",
                r.table,
                "Other metrics (FPP_pw over all exams, image-wise SE/SPE of eq. 2.1). " + r.markdown,
            )
        )
    long = thesis_rows

    def combined(name: str, column: str, parts: list) -> None:
        if not parts:
            return
        frames, text = [], []
        for label, report in parts:
            frame = report.table.to_pandas()
            frame.insert(0, column, label)
            frames.append(frame)
            text.append(f"### {column} = {label}\n\n" + report.markdown.split("\n\n", 1)[1])
        table = pa.Table.from_pandas(pd.concat(frames, ignore_index=True), preserve_index=False)
        reports.append(Report(name, table, "\n\n".join(text)))

    if config.by_group and long["group"].notna().any():
        parts, groups = [], {}
        for group, readers in long.groupby("group")["reader"]:
            readers = sorted(set(readers))
            groups[group] = readers
            rows = paired_readers(long, "all", readers)
            if len(rows):
                parts.append((group, build(rows)))
        combined("table_2_1_by_group", "group", parts)
        if len(groups) == 2:  # does the AI help one group more? (gain = aided - unaided, per reader)
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
                if len(a) >= 2 and len(b) >= 2:
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
            if rows:
                title = (
                    f"Gain with the AI (aided - unaided) by reader group, {g1} - {g2}: two-sided Student "
                    f"t-test, {config.level:.0%} CI.\n\n"
                )
                header = ["Metric", f"gain {g1}", f"gain {g2}", "Difference", "p"]
                reports.append(
                    Report("gain_by_group", pa.Table.from_pylist(rows), title + markdown_table(header, body))
                )
    if config.by_body_part:
        parts = []
        for scope in sorted(s for s in long["scope"].unique() if s.startswith("body_part=")):
            rows = paired_readers(long, scope)
            if len(rows):
                parts.append((scope.split("=", 1)[1], build(rows)))
        combined("table_2_1_by_body_part", "body_part", parts)
    return reports


def main(argv=None) -> int:
    try:
        config = resolve_config(parse_args(argv))
        if config.markers is None:
            study = example_reader_study(config.example_seed)
        else:
            study = load_reader_study(config.markers, config.truth, config.images, config.ai_detections)
    except (ConfigError, ReaderStudyError, FileNotFoundError, ValueError) as err:
        return fail(err)
    start = time.perf_counter()
    label = "EMBEDDED EXAMPLE: " if study.embedded else ""
    print(f"reader study: {label}{study.source}\n  {study.describe()}")
    long = reader_metrics_table(
        study.truth, study.reads, study.markers, by="body_part" if config.by_body_part else None
    )
    if long.empty or paired_readers(long, "all").empty:
        print("error: no reader has reads in both conditions: nothing to compare", file=sys.stderr)
        return 2
    out_dir = Path(config.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = tables(config, long)
    files = []
    for report in reports:
        files += list(report.write(out_dir).values())
    per_reader = pa.Table.from_pandas(long, preserve_index=False)
    long.to_csv(out_dir / "reader_metrics.csv", index=False)
    import pyarrow.parquet as pq

    pq.write_table(per_reader, out_dir / "reader_metrics.parquet")
    files += [out_dir / "reader_metrics.csv", out_dir / "reader_metrics.parquet"]

    from core.detection.figures import roc_froc_figure
    from stats.figures import save_figure

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
        readers=wide,
        fp_per="patient",
        fp_range=config.froc_fp_range,
        title="Readers unaided (open) and aided (filled)"
        + (" - simulated example" if study.embedded else ""),
    )
    files.append(save_figure(fig, out_dir / "reader_study_roc_froc.png"))

    overall = reports[0].table.to_pandas()
    for row in overall.itertuples(index=False):
        key = metric_key(row.metric)
        summary |= {
            f"unaided_mean.{key}": row.unaided_mean,
            f"aided_mean.{key}": row.aided_mean,
            f"diff.{key}": row.diff,
            f"ci_low.{key}": row.ci_low,
            f"ci_high.{key}": row.ci_high,
            f"pvalue.{key}": row.pvalue,
        }
    uri = tracking_uri(config)
    tracker = Tracker(uri, config.experiment)
    key = _inputs_key(config)
    params = config.model_dump(mode="json") | {"source": study.source, "embedded": study.embedded}
    parent = tracker.start_sweep(config.sweep_name, key, params, tags={"data": study.source})
    finished = tracker.finished_units(parent)
    logged = 0
    for (reader, condition), rows in long[long["scope"] == "all"].groupby(["reader", "condition"], sort=True):
        unit_key = stable_key({"analysis": key, "reader": reader, "condition": condition})
        if unit_key in finished:
            continue
        metrics = {metric_key(m): v for m, v in zip(rows["metric"], rows["value"])}
        metrics["n_studies"] = float(rows["n_studies"].iloc[0])
        group = rows["group"].iloc[0]
        tracker.log_unit(
            parent,
            unit_key,
            f"{reader}/{condition}",
            params={"reader": reader, "condition": condition, "group": group},
            metrics=metrics,
            tags={"reader": reader, "condition": condition},
        )
        logged += 1
    tracker.finish_sweep(parent, summary, files)
    print(reports[0].markdown)
    for report in reports[1:]:
        print(f"\n{report.name}: {out_dir / (report.name + '.md')}")
    readers = long["reader"].nunique()
    print(
        f"\n{readers} readers x {len(CONDITIONS)} conditions ({logged} child runs logged now) in "
        f"{time.perf_counter() - start:.1f} s; results in {out_dir}/ and MLflow run {parent} at {uri} "
        f"(experiment {config.experiment!r})" + ("; data: simulated example" if study.embedded else "")
    )
    (out_dir / "run.json").write_text(json.dumps({"mlflow_run": parent, "tracking_uri": uri}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
