"""Baseline NAS sweep on NB-101: random and greedy search, many seeds, every sub-space, on Ray.

Usage:
    python jobs/nb101_baselines.py [--config FILE] [--spaces A1,FULL] [--methods RS,GS]
        [--seeds 100] [--budget 10000] [--benchmark PATH|real-subset] [--tracking-uri URI]
    ray job submit --working-dir . -- python jobs/nb101_baselines.py ...

Without --benchmark it runs on the embedded mini-benchmark (NB-101 cells on digits, built by
this project). Re-running the same sweep re-runs nothing finished. Results: a parent MLflow
run with one child per (space, method, seed), the final-regret table and regret-vs-time
figures in --output-dir and as artifacts of the parent run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from cluster.baselines import (  # noqa: E402
    BaselinesConfig,
    baseline_search,
    curves_table,
    open_benchmark,
    plan,
    record_search,
    report,
    resolve_spaces,
)
from cluster.jobkit import close_sweep, csv_list, fail, job_parser, overrides, tracking_uri  # noqa: E402
from cluster.runtime import init_ray  # noqa: E402
from cluster.scheduler import TrackingTarget, run_units  # noqa: E402
from cluster.tracking import Tracker  # noqa: E402
from core.config import ConfigError, load_config  # noqa: E402
from core.keys import stable_key  # noqa: E402
from search.regret import change_points  # noqa: E402
from search.space_data import SpaceData  # noqa: E402

EMBEDDED = " (embedded default: NB-101 cells on digits, built by this project)"


def parse_args(argv):
    p = job_parser(__doc__, "BaselinesConfig keys")
    p.add_argument("--spaces", type=csv_list)
    p.add_argument("--methods", type=csv_list)
    p.add_argument("--seeds", type=int)
    p.add_argument("--budget", type=int)
    p.add_argument("--benchmark")
    return p.parse_args(argv)


def resolve_config(args) -> BaselinesConfig:
    flags = overrides(
        args,
        spaces=args.spaces,
        methods=args.methods,
        seeds=args.seeds,
        budget=args.budget,
        benchmark=args.benchmark,
    )
    return load_config(BaselinesConfig, args.config, flags)


def main(argv=None) -> int:
    try:
        config = resolve_config(parse_args(argv))
        bench = open_benchmark(config.benchmark)
        spaces = resolve_spaces(config, bench)
    except (ConfigError, FileNotFoundError) as err:
        return fail(err)
    start = time.perf_counter()
    print(
        f"benchmark: {bench.source}{EMBEDDED if config.benchmark is None else ''}; spaces {spaces}; "
        f"methods {config.methods}; {config.seeds} seeds; budget {config.budget}"
    )
    data = {name: SpaceData.from_benchmark(bench, name) for name in spaces}
    for name, space in data.items():
        if len(space) < config.budget:
            print(
                f"  {name}: {len(space):,} cells < budget {config.budget:,}: "
                "searches stop when it is exhausted"
            )
    units = plan(config, bench, spaces)
    uri = tracking_uri(config)
    tracker = Tracker(uri, config.experiment)
    parent = tracker.start_sweep(
        config.sweep_name,
        stable_key({"units": sorted(u.key for u in units)}),
        config.model_dump() | {"spaces": spaces},
        tags={"benchmark": bench.source},
    )
    init_ray(config.ray_address)
    outcome = run_units(
        units,
        baseline_search,
        record_search,
        TrackingTarget(uri, config.experiment, parent),
        shared=(data, config.report_steps),
        max_retries=config.max_retries,
        label="baseline searches",
    )
    steps = {key: outcome.results[key]["steps"] for key in outcome.ran}
    for key, run_id in outcome.skipped.items():  # finished earlier: read back what was logged
        steps[key] = change_points(tracker.load_table(run_id, "trajectory.parquet"))
    out_dir = Path(config.output_dir)
    _, files = report(config, curves_table(units, steps), out_dir)
    return close_sweep(
        tracker, parent, outcome, files, (out_dir / "final_regret.md").read_text(), start, uri, config
    )


if __name__ == "__main__":
    raise SystemExit(main())
