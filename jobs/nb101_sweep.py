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

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from cluster.baselines import benchmark_identity, open_benchmark, resolve_spaces  # noqa: E402
from cluster.nb101_sweep import PRESETS, Sweep, SweepConfig, report  # noqa: E402
from cluster.runtime import init_ray  # noqa: E402
from cluster.scheduler import TrackingTarget, fault_hook, run_graph  # noqa: E402
from cluster.tracking import Tracker, stable_key  # noqa: E402
from cluster.ws_correlation import check_recipes  # noqa: E402
from core.config import ConfigError, load_config, parse_override  # noqa: E402


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--config", help="YAML/JSON file of SweepConfig keys over the preset, or env:NAME")
    p.add_argument("--spaces", type=_csv)
    p.add_argument("--variants", type=_csv)
    p.add_argument("--ws-seeds", type=int)
    p.add_argument("--baseline-seeds", type=int)
    p.add_argument("--budget", type=int)
    p.add_argument("--benchmark")
    p.add_argument("--tracking-uri")
    p.add_argument("--ray-address")
    p.add_argument("--output-dir")
    p.add_argument("--dry-run", action="store_true", help="print units, reuse and cost; run nothing")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key; supernet.<field>=value for the supernet recipe",
    )
    return p.parse_args(argv)


def resolve_config(args) -> SweepConfig:
    """Preset, then the config file (or `env:NAME`), then flags and --set (dotted keys allowed)."""
    flags = {
        "spaces": args.spaces,
        "variants": args.variants,
        "ws_seeds": args.ws_seeds,
        "baseline_seeds": args.baseline_seeds,
        "budget": args.budget,
        "benchmark": args.benchmark,
        "tracking_uri": args.tracking_uri,
        "ray_address": args.ray_address,
        "output_dir": args.output_dir,
    }
    flags |= dict(parse_override(s) for s in args.set)
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
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    embedded = config.benchmark is None
    print(
        f"preset {args.preset}; benchmark {bench.source}"
        f"{' (embedded default: NB-101 cells on digits, built by this project)' if embedded else ''}"
    )
    print(
        f"spaces {spaces}; variants {config.variants}; {config.ws_seeds} WS seeds, {config.baseline_seeds} "
        f"baseline seeds; budget {config.budget} evaluations, WS {config.ws_budget} proxy evaluations; "
        f"{config.clock} clock"
        + ("; fewer seeds and smaller budgets than the thesis" if args.preset != "thesis" else "")
    )
    from jobs.nb101_baselines import tracking_uri

    uri = tracking_uri(config)
    tracker = Tracker(uri, config.experiment)
    identity = benchmark_identity(bench)
    probe = Sweep(config, bench, spaces, TrackingTarget(uri, config.experiment, ""), identity)
    if args.dry_run:
        print(probe.dry_run(tracker.finished_units()))
        return 0
    init_ray(config.ray_address)
    sweep_key = stable_key({"units": sorted(n.unit.key for n in probe.nodes)})
    parent = tracker.start_sweep(
        config.sweep_name,
        sweep_key,
        config.model_dump() | {"spaces": spaces},
        tags={"benchmark": bench.source, "preset": args.preset},
    )
    sweep = Sweep(
        config, bench, spaces, TrackingTarget(uri, config.experiment, parent), identity, fault_hook()
    )
    outcome = run_graph(sweep.nodes, tracker, label="nb101 sweep units")
    markdown, files = report(sweep, outcome.results, Path(config.output_dir))
    metrics = {
        "units": len(sweep.nodes),
        "units_run": len(outcome.ran),
        "units_skipped": len(outcome.skipped),
        "wall_seconds": time.perf_counter() - start,
    }
    tracker.finish_sweep(parent, metrics, files)
    print(markdown)
    print(
        f"{len(sweep.nodes)} units ({len(outcome.ran)} run, {len(outcome.skipped)} reused) in "
        f"{metrics['wall_seconds']:.0f} s; results in {config.output_dir}/ and MLflow run {parent} at {uri} "
        f"(experiment {config.experiment!r})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
