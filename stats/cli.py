"""`python -m stats table KIND --experiment NAME`: build a thesis table from logged MLflow runs.

Reads the runs with stats.mlflow_io (one batched search, then the Parquet artifacts), builds the
table with stats.tables, writes <out>/<kind>.md, .csv and .parquet and prints the Markdown.
Only FINISHED runs count unless --all-statuses; runs lacking the kind's params (e.g. the sweep's
parent run) are ignored. What each kind needs from a run:

  correlation  params space, variant, replicate; artifact proxy.parquet: columns proxy, target
               (one row per evaluated cell); or, as a sweep logs its evaluations, param
               modes (NO-FT,BNS-FT) and one proxy column per mode                    -> table 4.3
  oneshot      params space, method (RS_bs, GS_bs, RS_ws, GS_ws; with a param variant other
               than uniform the method becomes e.g. RS_ws[SINGLE-K]); artifact
               trajectory.parquet: columns regret and a clock, `time`, else `sim_time`, else
               `step` (or --time-column), one row per evaluation; each WS run counts its first
               evaluation, the baselines their regret at the mean time of those  -> tables 4.4/4.5

With --parent-run ID (a sweep of jobs/nb101_sweep.py), `table oneshot` and `table correlation`
build tables 4.3-4.5 from the sweep's own child runs.
  bone-age     param model; artifact predictions.parquet: columns sex, chronological_age,
               bone_age, predicted, pathological, predicted_pathological [, patient_id] -> 6.1-6.3
  readers      params reader, condition (aided / unaided); one metric per measure      -> table 2.1
               (metrics.<name>: SE_pw, SPE_pw, ...; every metric logged counts)

Exit status: 0 on success; 2 for a usage error, an unknown experiment or parent run, or runs that
do not hold what the table needs (the message says what is missing); nothing is written then.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from stats import mlflow_io, tables

KINDS = ("correlation", "oneshot", "bone-age", "readers")
DEFAULT_ARTIFACTS = {
    "correlation": "proxy.parquet",
    "oneshot": "trajectory.parquet",
    "bone-age": "predictions.parquet",
}
TIME_COLUMNS = ("time", "sim_time", "step")  # the clock of a trajectory, in order of preference
REQUIRED_PARAMS = {
    "correlation": ("space", "variant", "replicate"),
    "oneshot": ("space", "method"),
    "bone-age": ("model",),
    "readers": ("reader", "condition"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stats", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    table = sub.add_parser(
        "table",
        help="build a thesis table from MLflow runs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    table.add_argument("kind", choices=KINDS)
    table.add_argument("--experiment", required=True, help="MLflow experiment name (or id)")
    table.add_argument(
        "--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else the local server (started)"
    )
    table.add_argument("--parent-run", default=None, help="only the children of this run (a sweep)")
    table.add_argument("--out", default="outputs/tables", help="folder for <kind>.md/.csv/.parquet")
    table.add_argument("--artifact", default=None, help="Parquet artifact path in each run (see above)")
    table.add_argument("--all-statuses", action="store_true", help="also count runs not FINISHED")
    table.add_argument("--method", default="spearman", choices=("spearman", "kendall"), help="correlation")
    table.add_argument("--level", type=float, default=None, help="CI level (default 0.95; bone-age 0.90)")
    table.add_argument("--pairs", default=None, help="oneshot: A:B,... (default RS_bs:RS_ws,RS_bs:GS_ws,...)")
    table.add_argument("--scale", type=float, default=100.0, help="oneshot: regret multiplier (default 100)")
    table.add_argument("--welch", action="store_true", help="oneshot: Welch's t-test instead of Student's")
    table.add_argument(
        "--time-column", default=None, help="oneshot: the clock column (default time/sim_time/step)"
    )
    table.add_argument("--n-resamples", type=int, default=10_000, help="bone-age: bootstrap resamples")
    table.add_argument("--seed", type=int, default=0, help="bone-age: bootstrap seed")
    table.add_argument(
        "--lower-is-better", default="", help="readers: comma-separated metrics where lower is better"
    )
    return parser


def _select_runs(runs: pa.Table, kind: str, all_statuses: bool) -> pa.Table:
    params = [f"params.{p}" for p in REQUIRED_PARAMS[kind]]
    absent = [p for p in params if p not in runs.column_names]
    if runs.num_rows == 0:
        raise ValueError("no runs found")
    if absent:
        raise ValueError(f"no run has param(s) {', '.join(absent)} needed by the {kind} table")
    keep = pc.is_valid(runs[params[0]])
    for p in params[1:]:
        keep = pc.and_(keep, pc.is_valid(runs[p]))
    if not all_statuses:
        keep = pc.and_(keep, pc.equal(runs["status"], "FINISHED"))
    selected = runs.filter(keep)
    if selected.num_rows == 0:
        which = "" if all_statuses else "FINISHED "
        raise ValueError(f"no {which}run has all of {', '.join(params)}")
    return selected


def _readers_long(runs: pa.Table) -> pa.Table:
    metrics = [c for c in runs.column_names if c.startswith("metrics.")]
    if not metrics:
        raise ValueError("reader runs log no metrics")
    frame = runs.select(["params.reader", "params.condition", *metrics]).to_pandas()
    long = frame.melt(id_vars=["params.reader", "params.condition"], var_name="metric", value_name="value")
    long = long.dropna(subset=["value"])
    long["metric"] = long["metric"].str.removeprefix("metrics.")
    long = long.rename(columns={"params.reader": "reader", "params.condition": "condition"})
    return pa.Table.from_pandas(long[["reader", "metric", "condition", "value"]], preserve_index=False)


def _with_clock(data: pa.Table, requested: str | None) -> pa.Table:
    """The trajectories with their clock column named `time` (as stats.tables expects)."""
    candidates = [requested] if requested else list(TIME_COLUMNS)
    found = next((c for c in candidates if c in data.column_names), None)
    if found is None:
        raise ValueError(
            f"trajectories have no clock column {' / '.join(candidates)}; columns: {data.column_names}"
        )
    if found == "time":
        return data
    if "time" in data.column_names:
        data = data.drop_columns(["time"])
    return data.rename_columns(["time" if c == found else c for c in data.column_names])


def _pairs(text: str | None):
    if text is None:
        return tables.THESIS_PAIRS
    pairs = []
    for item in text.split(","):
        a, sep, b = item.strip().partition(":")
        if not sep or not a or not b:
            raise ValueError(f"--pairs items must look like A:B, got {item!r}")
        pairs.append((a, b))
    return tuple(pairs)


def _evaluations_only(runs: pa.Table) -> pa.Table:
    """A sweep's runs with space, variant and replicate are its supernets and its evaluations:
    only evaluations (param `modes`) hold proxies."""
    if "params.modes" not in runs.column_names:
        return runs
    return runs.filter(pc.is_valid(runs["params.modes"]))


def _proxies_long(data: pa.Table) -> pa.Table:
    """Evaluation artifacts with one proxy column per mode (NO-FT, BNS-FT), as a sweep logs them,
    in the long form table 4.3 reads: a row per cell and mode, `variant` the mode for the uniform
    supernet and the supernet's variant otherwise (BNS-FT)."""
    if "proxy" in data.column_names or "modes" not in data.column_names:
        return data
    frame = data.to_pandas()
    parts = []
    for mode in sorted({m for modes in frame["modes"] for m in str(modes).split(",")}):
        sub = frame[frame["modes"].map(lambda modes, mode=mode: mode in str(modes).split(","))]
        label = sub["variant"].where(sub["variant"] != "uniform", mode)
        parts.append(
            sub.assign(variant=label, proxy=sub[mode])[["space", "variant", "replicate", "proxy", "target"]]
        )
    return pa.Table.from_pandas(pd.concat(parts, ignore_index=True), preserve_index=False)


def _with_variants(data: pa.Table) -> pa.Table:
    """Methods of runs whose param variant is not uniform carry it: RS_ws[SINGLE-K]."""
    if "variant" not in data.column_names:
        return data
    frame = data.to_pandas()
    other = frame["variant"].notna() & (frame["variant"] != "uniform")
    frame.loc[other, "method"] = frame.loc[other, "method"] + "[" + frame.loc[other, "variant"] + "]"
    return pa.Table.from_pandas(frame.drop(columns=["variant"]), preserve_index=False)


def build(args) -> tables.Report:
    """The Report for parsed CLI arguments (reads MLflow; writes nothing)."""
    runs = mlflow_io.runs_table(args.experiment, args.tracking_uri, args.parent_run)
    runs = _select_runs(runs, args.kind, args.all_statuses)
    if args.kind == "correlation":
        runs = _evaluations_only(runs)
    level = args.level if args.level is not None else (0.90 if args.kind == "bone-age" else 0.95)
    if args.kind == "readers":
        lower = [m.strip() for m in args.lower_is_better.split(",") if m.strip()]
        return tables.readers_report(_readers_long(runs), lower_is_better=lower, level=level)
    artifact = args.artifact or DEFAULT_ARTIFACTS[args.kind]
    attach = [f"params.{p}" for p in REQUIRED_PARAMS[args.kind]]
    optional = {"correlation": ["params.modes"], "oneshot": ["params.variant"]}.get(args.kind, [])
    attach += [c for c in optional if c in runs.column_names and c not in attach]
    data = mlflow_io.load_parquet_artifacts(runs, artifact, args.tracking_uri, attach=attach)
    if args.kind == "correlation":
        return tables.correlation_report(_proxies_long(data), method=args.method, level=level)
    if args.kind == "oneshot":
        return tables.oneshot_report(
            _with_clock(_with_variants(data), args.time_column),
            pairs=_pairs(args.pairs),
            scale=args.scale,
            equal_var=not args.welch,
            level=level,
        )
    return tables.bone_age_report(data, level=level, n_resamples=args.n_resamples, seed=args.seed)


def main(argv=None) -> int:
    from mlflow_server.uri import TrackingUnreachable, resolve

    args = _parser().parse_args(argv)
    try:
        args.tracking_uri = resolve(args.tracking_uri).uri  # the jobs' rule: flag, variable, local server
        report = build(args)
    except (ValueError, TrackingUnreachable) as exc:  # includes mlflow_io.ExperimentNotFound
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = report.write(Path(args.out))
    print(report.markdown)
    for path in paths.values():
        print(f"wrote {path}", file=sys.stderr)
    return 0
