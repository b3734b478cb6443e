"""Baseline searches at scale: 100 seeds x 10,000 evaluations of RS and GS on one real space.

Measured in the same run: the searches in one plain process (no Ray, no MLflow) and the same
units through the scheduler (Ray tasks, each logging a child run with its trajectory to a real
MLflow server). The overhead compares the plain process with Ray limited to one CPU (the same
compute); the 2-CPU run gives the wall time on this machine.

    python benchmarks/bench_baselines.py [--seeds 100] [--budget 10000] [--space A2]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

from _timing import best_time

from cluster.nb101.baselines import baseline_search, plan, record_search
from cluster.nb101.config import BaselinesConfig
from cluster.runtime import init_ray
from cluster.scheduler import TrackingTarget, run_units
from cluster.tracking import Tracker
from core.nb101.benchmark import Benchmark
from mlflow_server.server import ServerConfig, start, stop
from search.runner import run_search
from search.space_data import SpaceData


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def through_ray(units, data, home: Path, cpus: int, tag: str) -> float:
    import ray

    url = start(ServerConfig(home=home, port=_port()))
    try:
        tracker = Tracker(url, f"bench-{tag}")
        parent = tracker.start_sweep(tag, tag, {})
        init_ray(num_cpus=cpus)
        begin = time.perf_counter()
        target = TrackingTarget(url, f"bench-{tag}", parent)
        run_units(units, baseline_search, record_search, target, shared=(data, [100, 1000]))
        return time.perf_counter() - begin
    finally:
        ray.shutdown()
        stop(home)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--budget", type=int, default=10_000)
    p.add_argument("--space", default="A2")
    args = p.parse_args()
    bench = Benchmark.real_subset()
    space = SpaceData.from_benchmark(bench, args.space)
    config = BaselinesConfig(
        benchmark="real-subset", spaces=[args.space], seeds=args.seeds, budget=args.budget
    )
    units = plan(config, bench, [args.space])
    evaluations = 0

    def plain():
        nonlocal evaluations
        evaluations = 0
        for unit in units:
            q = unit.params
            result = run_search(q["method"], space, q["seed"], q["budget"], q["validation"])
            evaluations += result.stats["evaluations"]

    t_plain, _ = best_time(plain, 1)
    print(
        f"{len(units)} searches ({args.seeds} seeds x RS, GS) on {args.space} ({len(space):,} real cells), "
        f"{evaluations:,} evaluations"
    )
    print(f"plain process, 1 CPU:        {t_plain:7.1f} s  {evaluations / t_plain:>10,.0f} evaluations/s")
    with tempfile.TemporaryDirectory() as tmp:
        t_ray1 = through_ray(units, {args.space: space}, Path(tmp) / "one", 1, "one-cpu")
        t_ray2 = through_ray(units, {args.space: space}, Path(tmp) / "two", 2, "two-cpus")
    print(f"Ray + MLflow server, 1 CPU:  {t_ray1:7.1f} s  {evaluations / t_ray1:>10,.0f} evaluations/s")
    print(f"Ray + MLflow server, 2 CPUs: {t_ray2:7.1f} s  {evaluations / t_ray2:>10,.0f} evaluations/s")
    print(
        f"overhead of Ray + MLflow at equal CPUs: {100 * (t_ray1 / t_plain - 1):+.1f}% (goal < 20%); "
        f"ratio plain/Ray(2 CPUs) {t_plain / t_ray2:.2f}x"
    )


if __name__ == "__main__":
    main()
