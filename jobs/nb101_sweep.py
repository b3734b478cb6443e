"""The NB-101 weight-sharing study (thesis chapter 4) as one resumable Ray job.

Usage:
    python jobs/nb101_sweep.py                                    # embedded default on CPU
    python jobs/nb101_sweep.py --preset smoke                     # seconds, for tests
    python jobs/nb101_sweep.py --preset thesis --benchmark nb101.parquet --set supernet.cifar10_root=DIR
    python jobs/nb101_sweep.py --dry-run                          # units, reuse and cost; runs nothing
    ray job submit --working-dir . -- python jobs/nb101_sweep.py

For each space and variant: baseline RS/GS seeds, WS seeds (a supernet, then RS_ws and GS_ws
on its proxy, then the best cells trained), the correlation study; at the end the one-shot
comparison (tables 4.4/4.5), a power report, table 4.3 and regret-vs-time figures (fig. 4.2),
printed and logged on the parent MLflow run. Submitting the same config again reuses every
finished unit: that is how a crashed or stopped sweep resumes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from cluster.baselines import benchmark_identity, open_benchmark, resolve_spaces  # noqa: E402
from cluster.jobkit import close_sweep, csv_list, fail, job_parser, overrides, tracking_uri  # noqa: E402
from cluster.nb101_sweep import PRESETS, Sweep, SweepConfig, report  # noqa: E402
from cluster.runtime import init_ray  # noqa: E402
from cluster.scheduler import TrackingTarget, fault_hook, run_graph  # noqa: E402
from cluster.tracking import Tracker  # noqa: E402
from cluster.ws_correlation import check_recipes  # noqa: E402
from core.config import ConfigError, load_config  # noqa: E402
from core.keys import stable_key  # noqa: E402

EMBEDDED = " (embedded default: NB-101 cells on digits, built by this project)"


def parse_args(argv):
    p = job_parser(__doc__, "SweepConfig keys over the preset (supernet.<field> for the recipe)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--spaces", type=csv_list)
    p.add_argument("--variants", type=csv_list)
    p.add_argument("--ws-seeds", type=int)
    p.add_argument("--baseline-seeds", type=int)
    p.add_argument("--budget", type=int)
    p.add_argument("--benchmark")
    p.add_argument("--dry-run", action="store_true", help="print units, reuse and cost; run nothing")
    return p.parse_args(argv)


def resolve_config(args) -> SweepConfig:
    """Preset, then the config file (or `env:NAME`), then flags and --set (dotted keys allowed)."""
    flags = overrides(
        args,
        spaces=args.spaces,
        variants=args.variants,
        ws_seeds=args.ws_seeds,
        baseline_seeds=args.baseline_seeds,
        budget=args.budget,
        benchmark=args.benchmark,
    )
    config = load_config(SweepConfig, args.config, flags, base=PRESETS[args.preset])
    check_recipes(config.correlation())
    return config


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        config = resolve_config(args)
        bench = open_benchmark(config.benchmark)
        spaces = resolve_spaces(config, bench)
    except (ConfigError, FileNotFoundError) as err:
        return fail(err)
    start = time.perf_counter()
    print(f"preset {args.preset}; benchmark {bench.source}{EMBEDDED if config.benchmark is None else ''}")
    print(
        f"spaces {spaces}; variants {config.variants}; {config.ws_seeds} WS seeds, {config.baseline_seeds} "
        f"baseline seeds; budget {config.budget} evaluations, WS {config.ws_budget} proxy evaluations; "
        f"{config.clock} clock"
        + ("; fewer seeds and smaller budgets than the thesis" if args.preset != "thesis" else "")
    )
    uri = tracking_uri(config)
    tracker = Tracker(uri, config.experiment)
    sweep = Sweep(config, bench, spaces, None, benchmark_identity(bench), fault_hook())
    if args.dry_run:
        print(sweep.dry_run(tracker.finished_units()))
        return 0
    init_ray(config.ray_address)
    parent = tracker.start_sweep(
        config.sweep_name,
        stable_key({"units": sorted(n.unit.key for n in sweep.nodes)}),
        config.model_dump() | {"spaces": spaces},
        tags={"benchmark": bench.source, "preset": args.preset},
    )
    sweep.set_target(TrackingTarget(uri, config.experiment, parent))
    outcome = run_graph(sweep.nodes, tracker, label="nb101 sweep units")
    markdown, files = report(sweep, outcome.results, Path(config.output_dir))
    return close_sweep(tracker, parent, outcome, files, markdown, start, uri, config)


if __name__ == "__main__":
    raise SystemExit(main())
