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

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from cluster.detection.reader_study import (  # noqa: E402
    ReaderStudyConfig,
    inputs_key,
    load_study,
    log_readers,
    tables,
    write_outputs,
)
from cluster.jobkit import Flag, JobCli, fail, job_main, open_tracker  # noqa: E402
from cluster.sweep import open_sweep  # noqa: E402
from cluster.tracking import now_ms  # noqa: E402
from core.config import ConfigError  # noqa: E402
from core.detection.reader_study import ReaderStudyError  # noqa: E402
from core.metrics.readers import CONDITIONS, paired_readers, reader_metrics_table  # noqa: E402

CLI = JobCli(
    __doc__,
    ReaderStudyConfig,
    flags=(
        Flag("--markers", "markers"),
        Flag("--truth", "truth"),
        Flag("--images", "images"),
        Flag("--ai-detections", "ai_detections"),
    ),
)


@job_main(ReaderStudyError)
def main(argv=None) -> int:
    try:
        config = CLI.config(CLI.parse(argv))
        study = load_study(config)
    except (ConfigError, ReaderStudyError, FileNotFoundError, ValueError) as err:
        return fail(err)
    label = "EMBEDDED EXAMPLE: " if study.embedded else ""
    print(f"reader study: {label}{study.source}\n  {study.describe()}")
    tracker = open_tracker(config)  # checked before any work
    started = now_ms()  # every reader's numbers come from this one analysis: their runs span it
    long = reader_metrics_table(
        study.truth, study.reads, study.markers, by="body_part" if config.by_body_part else None
    )
    analysis = (started, now_ms())
    if long.empty or paired_readers(long, "all").empty:
        print("error: no reader has reads in both conditions: nothing to compare", file=sys.stderr)
        return 2
    out_dir = Path(config.output_dir)
    reports = tables(config, long)
    files, summary = write_outputs(config, study, long, reports, out_dir)
    readers = f"{long['reader'].nunique()} readers x {len(CONDITIONS)} conditions"
    markdown = "\n".join(
        [reports[0].markdown]
        + [f"\n{report.name}: {out_dir / (report.name + '.md')}" for report in reports[1:]]
        + [f"\n{readers}" + ("; data: simulated example" if study.embedded else "")]
    )
    key = inputs_key(config)
    params = config.model_dump(mode="json") | {"source": study.source, "embedded": study.embedded}
    with open_sweep(tracker, config.sweep_name, key, params, tags={"data": study.source}) as sweep:
        outcome = log_readers(tracker, sweep.run_id, key, long, analysis)
        tracker.log_metrics(sweep.run_id, summary)
        sweep.close(outcome, files, markdown, out_dir, noun="reader runs")
    (out_dir / "run.json").write_text(
        json.dumps({"mlflow_run": sweep.run_id, "tracking_uri": tracker.tracking_uri})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
