"""Baseline NAS sweep on NB-101: random and greedy search, many seeds, every sub-space, on Ray.

Usage:
    python jobs/nb101_baselines.py [--config FILE] [--spaces A1,FULL] [--methods RS,GS]
        [--seeds 100] [--budget 10000] [--benchmark PATH|shared] [--tracking-uri URI]
    ray job submit --working-dir . -- python jobs/nb101_baselines.py ...

Without --benchmark it runs on the embedded mini-benchmark (NB-101 cells on digits, built by
this project). Re-running the same sweep re-runs nothing finished. Results: a parent MLflow
run with one child per (space, method, seed), the final-regret table and regret-vs-time
figures in --output-dir and as artifacts of the parent run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from cluster.baselines import (  # noqa: E402
    BaselinesConfig,
    baseline_unit,
    curves_table,
    open_benchmark,
    plan,
    report,
    resolve_spaces,
)
from cluster.runtime import init_ray  # noqa: E402
from cluster.scheduler import TrackingTarget, run_units  # noqa: E402
from cluster.tracking import Tracker, stable_key  # noqa: E402
from core.config import ConfigError, load_config, parse_override  # noqa: E402
from search.regret import change_points  # noqa: E402
from search.space_data import SpaceData  # noqa: E402


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", help="YAML/JSON file of BaselinesConfig keys, or env:NAME")
    p.add_argument("--spaces", type=_csv)
    p.add_argument("--methods", type=_csv)
    p.add_argument("--seeds", type=int)
    p.add_argument("--budget", type=int)
    p.add_argument("--benchmark")
    p.add_argument("--tracking-uri")
    p.add_argument("--ray-address")
    p.add_argument("--output-dir")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other config key")
    return p.parse_args(argv)


def resolve_config(args) -> BaselinesConfig:
    overrides = {
        "spaces": args.spaces,
        "methods": args.methods,
        "seeds": args.seeds,
        "budget": args.budget,
        "benchmark": args.benchmark,
        "tracking_uri": args.tracking_uri,
        "ray_address": args.ray_address,
        "output_dir": args.output_dir,
    }
    overrides.update(dict(parse_override(s) for s in args.set))
    return load_config(BaselinesConfig, args.config, overrides)


def tracking_uri(config) -> str:
    """The configured URI, else the project's local MLflow server (started if needed)."""
    if config.tracking_uri:
        return config.tracking_uri
    from mlflow_server.server import start

    url = start()
    print(f"MLflow tracking server: {url}")
    return url


def main(argv=None) -> int:
    try:
        config = resolve_config(parse_args(argv))
        bench = open_benchmark(config.benchmark)
        spaces = resolve_spaces(config, bench)
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    embedded = (
        " (embedded default: NB-101 cells on digits, built by this project)"
        if config.benchmark is None
        else ""
    )
    print(
        f"benchmark: {bench.source}{embedded}; spaces {spaces}; methods {config.methods}; "
        f"{config.seeds} seeds; budget {config.budget}"
    )
    data = {name: SpaceData.from_benchmark(bench, name) for name in spaces}
    for name, space in data.items():
        if len(space) < config.budget:
            print(
                f"  {name}: {len(space):,} cells < budget {config.budget:,}: "
                "searches stop when the space is exhausted"
            )
    units = plan(config, bench, spaces)
    uri = tracking_uri(config)
    tracker = Tracker(uri, config.experiment)
    sweep_key = stable_key({"units": sorted(u.key for u in units)})
    parent = tracker.start_sweep(
        config.sweep_name,
        sweep_key,
        config.model_dump() | {"spaces": spaces},
        tags={"benchmark": bench.source},
    )
    target = TrackingTarget(uri, config.experiment, parent)
    init_ray(config.ray_address)
    outcome = run_units(
        units,
        baseline_unit,
        target,
        shared=(data, config.report_steps),
        max_retries=config.max_retries,
        label="baseline searches",
    )
    steps = {key: outcome.results[key]["steps"] for key in outcome.ran}
    for key, run_id in outcome.skipped.items():  # finished earlier: read back what was logged
        steps[key] = change_points(tracker.load_table(run_id, "trajectory.parquet"))
    out_dir = Path(config.output_dir)
    table, files = report(config, curves_table(units, steps), out_dir)
    metrics = {
        "units": len(units),
        "units_run": len(outcome.ran),
        "units_skipped": len(outcome.skipped),
        "wall_seconds": time.perf_counter() - start,
    }
    tracker.finish_sweep(parent, metrics, files)
    print((out_dir / "final_regret.md").read_text())
    print(
        f"{len(units)} units ({len(outcome.ran)} run, {len(outcome.skipped)} reused) in "
        f"{metrics['wall_seconds']:.0f} s; results in {out_dir}/ and MLflow run {parent} at {uri} "
        f"(experiment {config.experiment!r})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
