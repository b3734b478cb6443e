"""Weight-sharing correlation study on NB-101 (thesis table 4.3, figs. 4.3/4.4), on Ray.

Usage:
    python jobs/ws_correlation.py [--preset smoke|default|thesis] [--config FILE]
        [--spaces A1,FULL] [--variants uniform,SINGLE-K] [--supernets 5] [--cells 1000]
        [--benchmark PATH|real-subset] [--set supernet.epochs=50] [--tracking-uri URI]
    ray job submit --working-dir . -- python jobs/ws_correlation.py --preset default

`default` (no --preset): the embedded mini-benchmark and digits on CPU, 3 supernets x 300
cells per space, in minutes. `thesis`: 5 supernets x 1,000 cells, every variant, the paper's
recipe; needs the NB-101 file (--benchmark) and CIFAR-10 (--set supernet.cifar10_root=DIR).
Re-submitting the same study reuses every finished supernet and evaluation.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from cluster.baselines import benchmark_identity, open_benchmark, resolve_spaces  # noqa: E402
from cluster.jobkit import close_sweep, csv_list, fail, job_parser, overrides, tracking_uri  # noqa: E402
from cluster.runtime import init_ray  # noqa: E402
from cluster.scheduler import TrackingTarget, fault_hook, run_graph  # noqa: E402
from cluster.tracking import Tracker  # noqa: E402
from cluster.ws_correlation import PRESETS, Study, WSCorrelationConfig, check_recipes, report  # noqa: E402
from core.config import ConfigError, load_config  # noqa: E402
from core.keys import stable_key  # noqa: E402

EMBEDDED = " (embedded default: NB-101 cells on digits, built by this project)"


def parse_args(argv):
    p = job_parser(__doc__, "WSCorrelationConfig keys over the preset (supernet.<field> for the recipe)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--spaces", type=csv_list)
    p.add_argument("--variants", type=csv_list)
    p.add_argument("--supernets", type=int)
    p.add_argument("--cells", type=int)
    p.add_argument("--benchmark")
    return p.parse_args(argv)


def resolve_config(args) -> WSCorrelationConfig:
    """Preset, then the config file, then command-line flags and --set (dotted keys allowed)."""
    flags = overrides(
        args,
        spaces=args.spaces,
        variants=args.variants,
        supernets=args.supernets,
        cells=args.cells,
        benchmark=args.benchmark,
    )
    config = load_config(WSCorrelationConfig, args.config, flags, base=PRESETS[args.preset])
    check_recipes(config)
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
    recipe = config.recipe(spaces[0], "uniform", 0)
    print(
        f"preset {args.preset}; benchmark {bench.source}{EMBEDDED if config.benchmark is None else ''}; "
        f"spaces {spaces}; variants {config.variants}; {config.supernets} supernets x {config.cells} cells; "
        f"recipe: {recipe.dataset}, {recipe.epochs} epochs, {recipe.stem_filters} filters"
    )
    uri = tracking_uri(config)
    tracker = Tracker(uri, config.experiment)
    init_ray(config.ray_address)
    study = Study(config, bench, spaces, None, benchmark_identity(bench), fault_hook())
    parent = tracker.start_sweep(
        config.sweep_name,
        stable_key({"units": sorted(n.unit.key for n in study.nodes)}),
        config.model_dump() | {"spaces": spaces},
        tags={"benchmark": bench.source, "preset": args.preset},
    )
    study.target = TrackingTarget(uri, config.experiment, parent)
    outcome = run_graph(study.nodes, tracker, label="supernets and evaluations")
    markdown, files = report(study, study.proxies(outcome.results), Path(config.output_dir))
    return close_sweep(tracker, parent, outcome, files, markdown, start, uri, config)


if __name__ == "__main__":
    raise SystemExit(main())
