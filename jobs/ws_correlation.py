"""Weight-sharing correlation study on NB-101 (thesis table 4.3, figs. 4.3/4.4), on Ray.

Usage:
    python jobs/ws_correlation.py [--preset smoke|default|thesis] [--config FILE]
        [--spaces A1,FULL] [--variants uniform,SINGLE-K] [--supernets 5] [--cells 1000]
        [--benchmark PATH|shared] [--set supernet.epochs=50] [--tracking-uri URI]
    ray job submit --working-dir . -- python jobs/ws_correlation.py --preset default

`default` (no --preset): the embedded mini-benchmark and digits on CPU, 3 supernets x 300
cells per space, in minutes. `thesis`: 5 supernets x 1,000 cells, every variant, the paper's
recipe; needs the NB-101 file (--benchmark) and CIFAR-10 (--set supernet.cifar10_root=DIR).
Re-submitting the same study reuses every finished supernet and evaluation.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any cwd, e.g. Ray jobs

from cluster.baselines import benchmark_identity, open_benchmark, resolve_spaces  # noqa: E402
from cluster.runtime import init_ray  # noqa: E402
from cluster.scheduler import TrackingTarget, fault_hook, run_graph  # noqa: E402
from cluster.tracking import Tracker, stable_key  # noqa: E402
from cluster.ws_correlation import PRESETS, Study, WSCorrelationConfig, check_recipes, report  # noqa: E402
from core.config import ConfigError, load_config, parse_override  # noqa: E402


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--config", help="YAML/JSON config file, or env:NAME (JSON in a variable)")
    p.add_argument("--spaces", type=_csv)
    p.add_argument("--variants", type=_csv)
    p.add_argument("--supernets", type=int)
    p.add_argument("--cells", type=int)
    p.add_argument("--benchmark")
    p.add_argument("--tracking-uri")
    p.add_argument("--ray-address")
    p.add_argument("--output-dir")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key; supernet.<field>=value for the recipe",
    )
    return p.parse_args(argv)


def resolve_config(args) -> WSCorrelationConfig:
    """Preset, then the config file, then command-line flags and --set (dotted keys allowed)."""
    flags = {
        "spaces": args.spaces,
        "variants": args.variants,
        "supernets": args.supernets,
        "cells": args.cells,
        "benchmark": args.benchmark,
        "tracking_uri": args.tracking_uri,
        "ray_address": args.ray_address,
        "output_dir": args.output_dir,
    }
    flags |= dict(parse_override(s) for s in args.set)
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
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    embedded = (
        " (embedded default: NB-101 cells on digits, built by this project)"
        if config.benchmark is None
        else ""
    )
    recipe = config.recipe(spaces[0], "uniform", 0)
    print(
        f"preset {args.preset}; benchmark {bench.source}{embedded}; spaces {spaces}; "
        f"variants {config.variants}; {config.supernets} supernets x {config.cells} cells; "
        f"recipe: {recipe.dataset}, {recipe.epochs} epochs, {recipe.stem_filters} filters"
    )
    from jobs.nb101_baselines import tracking_uri

    uri = tracking_uri(config)
    tracker = Tracker(uri, config.experiment)
    identity = benchmark_identity(bench)
    init_ray(config.ray_address)
    probe = Study(config, bench, spaces, TrackingTarget(uri, config.experiment, ""), identity)
    sweep_key = stable_key({"units": sorted(n.unit.key for n in probe.nodes)})
    parent = tracker.start_sweep(
        config.sweep_name,
        sweep_key,
        config.model_dump() | {"spaces": spaces},
        tags={"benchmark": bench.source, "preset": args.preset},
    )
    study = Study(
        config, bench, spaces, TrackingTarget(uri, config.experiment, parent), identity, fault_hook()
    )
    outcome = run_graph(study.nodes, tracker, label="supernets and evaluations")
    markdown, files = report(study, study.proxies(outcome.results), Path(config.output_dir))
    metrics = {
        "units": len(study.nodes),
        "units_run": len(outcome.ran),
        "units_skipped": len(outcome.skipped),
        "wall_seconds": time.perf_counter() - start,
    }
    tracker.finish_sweep(parent, metrics, files)
    print(markdown)
    print(
        f"{len(study.nodes)} units ({len(outcome.ran)} run, {len(outcome.skipped)} reused) in "
        f"{metrics['wall_seconds']:.0f} s; results in {config.output_dir}/ and MLflow run {parent} at {uri}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
