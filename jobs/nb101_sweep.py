"""The NB-101 weight-sharing study (thesis chapter 4) as one resumable Ray job.

Usage:
    python jobs/nb101_sweep.py                                    # embedded default on CPU
    python jobs/nb101_sweep.py --preset smoke                     # seconds, for tests
    python jobs/nb101_sweep.py --preset thesis --benchmark nb101.parquet --set supernet.cifar10_root=DIR
    python jobs/nb101_sweep.py --dry-run                          # units, reuse and cost; runs nothing
    python jobs/nb101_sweep.py --preset thesis --benchmark real-subset --dry-run --cluster-gpus 32
    ray job submit --working-dir . -- python jobs/nb101_sweep.py

For each space and variant: baseline RS/GS seeds, WS seeds (a supernet, then RS_ws and GS_ws
on its proxy, then every visited cell evaluated, best proxy first), the correlation study; every
search charged on one clock (`clock: calibrated`: a cost table of one device, built by
jobs/nb101_costs.py; thesis 4.3.3); at the end the one-shot comparison (tables 4.4/4.5: each WS
run's first pick against the baselines at the mean time of those picks), the same differences at
larger budgets, a power report, table 4.3 and regret-vs-time figures (fig. 4.2), printed and
logged on the parent MLflow run. Submitting the same config again reuses every
finished unit: that is how a crashed or stopped sweep resumes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from cluster.jobkit import Flag, JobCli, csv_list, fail, finished_units, job_main, open_tracker  # noqa: E402
from cluster.nb101.benchmark import benchmark_identity, describe, open_benchmark, resolve_spaces  # noqa: E402
from cluster.nb101.clock import resolve_clock  # noqa: E402
from cluster.nb101.config import SWEEP_PRESETS, SweepConfig, check_data, check_recipes, for_planning  # noqa: E402
from cluster.nb101.correlation import opened  # noqa: E402
from cluster.nb101.report import sweep_report  # noqa: E402
from cluster.nb101.sweep import Sweep  # noqa: E402
from cluster.runtime import init_ray  # noqa: E402
from cluster.scheduler import fault_hook, run_graph  # noqa: E402
from cluster.sweep import open_sweep  # noqa: E402
from cluster.tracking import DatasetRef  # noqa: E402
from core.config import ConfigError  # noqa: E402
from core.keys import stable_key  # noqa: E402
from core.nb101.benchmark import BenchmarkError  # noqa: E402

CLI = JobCli(
    __doc__,
    SweepConfig,
    flags=(
        Flag("--spaces", "spaces", csv_list),
        Flag("--variants", "variants", csv_list),
        Flag("--ws-seeds", "ws_seeds", int),
        Flag("--baseline-seeds", "baseline_seeds", int),
        Flag("--budget", "budget", int),
        Flag("--benchmark", "benchmark"),
        Flag("--cluster-gpus", "cluster_gpus", int, help="dry run: estimate the wall time on N GPUs"),
    ),
    presets=SWEEP_PRESETS,
    dry_run=True,
)


@job_main(BenchmarkError)
def main(argv=None) -> int:
    args = CLI.parse(argv)
    try:
        config = CLI.config(args)
        note = for_planning(config) if args.dry_run else None
        check_recipes(config)
        bench = open_benchmark(config.benchmark)
        spaces = resolve_spaces(config, bench)
        check_data(config, bench)
        clock = resolve_clock(config, bench, config.supernet, required=not args.dry_run)
    except (ConfigError, FileNotFoundError) as err:
        return fail(err)
    print(f"preset {config.preset}; benchmark {describe(bench, config.benchmark)}")
    if note:
        print(note)
    print(
        f"spaces {spaces}; variants {config.variants}; {config.ws_seeds} WS seeds, {config.baseline_seeds} "
        f"baseline seeds; budget {config.budget} evaluations, WS {config.ws_budget} proxy evaluations; "
        f"{config.clock} clock"
        + ("; fewer seeds and smaller budgets than the thesis" if config.preset != "thesis" else "")
    )
    if not args.dry_run:  # a dry run states it with its cost
        print(f"times: {clock.describe()}")
    tracker = open_tracker(config, args.dry_run)
    plan = Sweep(config, bench, spaces, benchmark_identity(bench), fault_hook(), clock)
    if args.dry_run:
        print(plan.dry_run(finished_units(tracker)))
        return 0
    key = stable_key({"units": sorted(u.key for u in plan.units())})
    params = config.model_dump() | {"spaces": spaces}
    tags = {"benchmark": bench.source, "preset": config.preset}
    data = (DatasetRef("nb101-benchmark", benchmark_identity(bench), bench.source, "benchmark"),)
    with open_sweep(tracker, config.sweep_name, key, params, tags, data) as sweep:
        init_ray(config.ray_address)
        with opened(plan, sweep.target) as nodes:
            outcome = run_graph(nodes, tracker, label="nb101 sweep units")
        markdown, files = sweep_report(plan, outcome.results, Path(config.output_dir))
        return sweep.close(outcome, files, markdown, config.output_dir)


if __name__ == "__main__":
    raise SystemExit(main())
