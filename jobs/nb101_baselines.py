"""Baseline NAS sweep on NB-101: random and greedy search, many seeds, every sub-space, on Ray.

Usage:
    python jobs/nb101_baselines.py [--config FILE] [--spaces A1,FULL] [--methods RS,GS]
        [--seeds 100] [--budget 10000] [--benchmark PATH|real-subset] [--tracking-uri URI]
    ray job submit --working-dir . -- python jobs/nb101_baselines.py ...

Without --benchmark it runs on the embedded mini-benchmark (NB-101 cells on digits, built by
this project). Each evaluation costs the benchmark file's training time (`clock: benchmark`) or
the cell's time on a cost table (`--set clock=calibrated`, jobs/nb101_costs.py: the clock a
sweep with weight sharing uses, so that its baseline units are these). Re-running the same
sweep re-runs nothing finished. Results: a parent MLflow run with one child per (space, method,
seed), the final-regret table and regret-vs-time figures in --output-dir and as artifacts of
the parent run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from cluster.jobkit import Flag, JobCli, csv_list, fail, job_main, open_tracker  # noqa: E402
from cluster.nb101.baselines import STEPS, baseline_search, curves_table, plan, record_search  # noqa: E402
from cluster.nb101.benchmark import benchmark_identity, describe, open_benchmark, resolve_spaces  # noqa: E402
from cluster.nb101.clock import resolve_clock  # noqa: E402
from cluster.nb101.config import BaselinesConfig  # noqa: E402
from cluster.nb101.report import baselines_report  # noqa: E402
from cluster.runtime import init_ray  # noqa: E402
from cluster.scheduler import run_units  # noqa: E402
from cluster.sweep import open_sweep  # noqa: E402
from cluster.tracking import DatasetRef  # noqa: E402
from core.config import ConfigError  # noqa: E402
from core.keys import stable_key  # noqa: E402
from core.nb101.benchmark import BenchmarkError  # noqa: E402
from search.space_data import SpaceData  # noqa: E402

CLI = JobCli(
    __doc__,
    BaselinesConfig,
    flags=(
        Flag("--spaces", "spaces", csv_list),
        Flag("--methods", "methods", csv_list),
        Flag("--seeds", "seeds", int),
        Flag("--budget", "budget", int),
        Flag("--benchmark", "benchmark"),
    ),
)


@job_main(BenchmarkError)
def main(argv=None) -> int:
    try:
        config = CLI.config(CLI.parse(argv))
        bench = open_benchmark(config.benchmark)
        spaces = resolve_spaces(config, bench)
        clock = resolve_clock(config, bench, config.recipe)
    except (ConfigError, FileNotFoundError) as err:
        return fail(err)
    tracker = open_tracker(config)  # checked before any work
    print(
        f"benchmark: {describe(bench, config.benchmark)}; spaces {spaces}; "
        f"methods {config.methods}; {config.seeds} seeds; budget {config.budget}"
    )
    print(f"times: {clock.describe()}")
    space_data = {name: clock.timed(SpaceData.from_benchmark(bench, name)) for name in spaces}
    for name, space in space_data.items():
        if len(space) < config.budget:
            print(
                f"  {name}: {len(space):,} cells < budget {config.budget:,}: "
                "searches stop when it is exhausted"
            )
    units = plan(config, bench, spaces, clock)
    key = stable_key({"units": sorted(u.key for u in units)})
    params = config.model_dump() | {"spaces": spaces}
    tags = {"benchmark": bench.source}
    data = (DatasetRef("nb101-benchmark", benchmark_identity(bench), bench.source, "benchmark"),)
    with open_sweep(tracker, config.sweep_name, key, params, tags, data) as sweep:
        init_ray(config.ray_address)
        outcome = run_units(
            units,
            baseline_search,
            record_search,
            sweep.target,
            shared=(space_data, config.report_steps),
            max_retries=config.max_retries,
            label="baseline searches",
            tables=(STEPS,),
        )
        out_dir = Path(config.output_dir)
        _, files = baselines_report(config, curves_table(units, outcome.results), out_dir)
        return sweep.close(outcome, files, (out_dir / "final_regret.md").read_text(), config.output_dir)


if __name__ == "__main__":
    raise SystemExit(main())
