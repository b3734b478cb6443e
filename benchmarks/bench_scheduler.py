"""The driver at scale: n no-op units through the scheduler and the Tracker to a real MLflow tracking
server (SQLite), against Ray Tune running n no-op trials, in the same run (issue 18, part 4).

Four sides, each at every size of `--sizes` (default 1,000, 10,000 and 100,000), on one private
local Ray instance (`init_ray`, every CPU of the machine, one CPU a unit or trial):

- `scheduler`: `run_graph` launching each unit as a no-op Ray task, no tracking: the driver's own
  work per unit (readiness, completion queue, progress) plus Ray's task overhead;
- `+Tracker`: what a sweep does, `run_units` (a no-op task per unit, then its run logged through
  `Tracker.log_unit` by the logger actor) to the tracking server: one FINISHED MLflow run a unit;
- `Tune`: Ray Tune, n no-op trials (`tune.report` once) with its own result files (JSON, CSV)
  under a temporary storage path, and `reuse_actors=True`, Tune's setting for many short trials
  (its default starts an actor per trial: 0.2 trials/s on the 2-core machine);
- `Tune+MLflow`: the same with Tune's `MLflowLoggerCallback` to the same server: one MLflow run a
  trial, like-for-like with `+Tracker`.

Rates are units (trials) finished per second of wall time, from the call that runs them to its
return. A side still running after `--limit-s` seconds is stopped and its rate is the rate so far
(marked `*`, with how many of the n finished and the projected time for all n): a sweep's
throughput with all n units planned, without waiting hours for 100,000 runs to reach a SQLite
server at a few dozen requests a second. The server is this project's own (`mlflow_server`, SQLite
and served artifacts in a temporary folder, 127.0.0.1), started here unless `--tracking-uri`
names one. Ratios: `+Tracker` against `Tune+MLflow` (both log every unit to the same server) and
`scheduler` against `Tune` (neither logs to a server). Each line ends with the machine's load
average before and after the side ran (`--sides` runs some of them again when it changed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIDES = ("scheduler", "+Tracker", "Tune", "Tune+MLflow")


class TimeUp(Exception):
    """A side ran past its time limit: stop it and keep the rate measured so far."""


@dataclass
class Measure:
    """One side at one size: `done` of `total` finished in `seconds` (`stopped`: at the limit)."""

    side: str
    total: int
    done: int
    seconds: float
    stopped: bool = False
    note: str = ""
    failed: str = ""  # why the side did not finish (an error, not the limit)

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        what = "trials" if self.side.startswith("Tune") else "units"
        if self.failed:
            return f"{self.total:>7,} {what:<6} {self.side:<12} failed: {self.failed}"
        text = f"{self.total:>7,} {what:<6} {self.side:<12} {self.rate:>9,.1f} {what}/s"
        text += f"  {self.seconds:7.1f} s"
        if self.stopped:
            full = self.total / self.rate if self.rate else float("inf")
            text += f"  * stopped at the limit: {self.done:,} of {self.total:,} finished, all ~{full:,.0f} s"
        return text + (f"  ({self.note})" if self.note else "")


# ---- the units and trials: no work at all ---------------------------------------------------
def noop_compute(unit, fault):
    """A unit's work: nothing (returns its key)."""
    return unit.key


def noop_record(target, key):
    """A unit's logging: one FINISHED child run under the sweep, as every workload logs one."""
    from cluster.units import UnitResult

    metrics = {"value": 1.0}
    run_id = target.tracker().log_unit(target.parent_run_id, key, f"noop-{key}", {"key": key}, metrics)
    return UnitResult(key, run_id, metrics)


def noop_trial(config):
    """A Tune trial's work: one report, nothing else."""
    from ray import tune

    tune.report({"value": 1.0})


# ---- the sides ------------------------------------------------------------------------------
class NoTracking:
    """What `run_graph` asks of a tracker when nothing is logged: no unit finished before."""

    def finished_units(self) -> dict:
        return {}


def _deadline_hook(limit_s: float) -> tuple[Callable, list]:
    """A Node.done that counts finished units and raises TimeUp once the limit has passed."""
    deadline, count = time.perf_counter() + limit_s, [0]

    def done(_unit, _result):
        count[0] += 1
        if time.perf_counter() > deadline:
            raise TimeUp

    return done, count


def _run_nodes(side: str, units: list, launch: Callable, tracker, limit_s: float) -> Measure:
    """Every unit through `run_graph`, timed; stopped by TimeUp at the limit."""
    from cluster.scheduler import Node, run_graph

    done, count = _deadline_hook(limit_s)
    nodes = [Node(u, launch, done=done) for u in units]
    start = time.perf_counter()
    try:
        run_graph(nodes, tracker, label=f"{side} {len(units):,}")
        stopped = False
    except TimeUp:
        stopped = True
    return Measure(side, len(units), count[0], time.perf_counter() - start, stopped)


def _units(prefix: str, n: int) -> list:
    from cluster.units import Unit

    return [Unit(f"{prefix}-{i:06d}", f"noop-{i}", {"i": i}) for i in range(n)]


def scheduler_only(n: int, tag: str, limit_s: float) -> Measure:
    """run_graph over n no-op Ray tasks, nothing logged."""
    import ray

    from cluster.tracking import stamped

    task = ray.remote(stamped(noop_compute)).options(num_cpus=1)

    def launch(unit, _deps):
        return task.remote(unit, None)

    return _run_nodes("scheduler", _units(f"{tag}-s", n), launch, NoTracking(), limit_s)


def with_tracker(n: int, tag: str, url: str, limit_s: float) -> Measure:
    """run_graph as `run_units` drives it: a no-op task per unit, its run logged to the server."""
    from cluster.scheduler import TrackingTarget, unit_launcher
    from cluster.tracking import Tracker

    experiment = f"bench-scheduler-{tag}-{n}"
    tracker = Tracker(url, experiment)
    parent = tracker.start_sweep("bench-scheduler", f"{tag}-{n}", {"units": n})
    target = TrackingTarget(url, experiment, parent)
    launch = unit_launcher(noop_compute, noop_record, target)
    measure = _run_nodes("+Tracker", _units(f"{tag}-t{n}", n), launch, tracker, limit_s)
    logged = len(tracker.finished_units(parent))
    measure.note = f"{logged:,} FINISHED runs on the server"
    if not measure.stopped and logged != n:
        raise RuntimeError(f"{n:,} units ran but the server holds {logged:,} FINISHED runs of them")
    return measure


def tune_trials(n: int, tag: str, storage: Path, limit_s: float, url: str | None = None) -> Measure:
    """Ray Tune running n no-op trials (its default loggers; with `url`, MLflowLoggerCallback too),
    stopped by its own time budget at the limit."""
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    class Count(tune.Callback):
        finished = 0

        def on_trial_complete(self, iteration, trials, trial, **info):
            Count.finished += 1

    callbacks: list = [Count()]
    if url:
        callbacks.append(MLflowLoggerCallback(url, experiment_name=f"bench-tune-{tag}-{n}"))
    side = "Tune+MLflow" if url else "Tune"
    tuner = tune.Tuner(
        noop_trial,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(num_samples=n, time_budget_s=limit_s, reuse_actors=True),
        run_config=tune.RunConfig(
            name=f"{side.replace('+', '-')}-{n}", storage_path=str(storage), callbacks=callbacks, verbose=0
        ),
    )
    start = time.perf_counter()
    tuner.fit()
    seconds = time.perf_counter() - start
    return Measure(side, n, Count.finished, seconds, stopped=Count.finished < n)


# ---- the run --------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def tracking_server(url: str | None):
    """The tracking server to log to: `url` as given, else this project's server (SQLite) started
    in a temporary folder on a free port of 127.0.0.1 and stopped at the end."""
    if url:
        yield url
        return
    from mlflow_server.server import ServerConfig, start, stop

    home = Path(tempfile.mkdtemp(prefix="bench-scheduler-mlflow-"))
    try:
        yield start(ServerConfig(home=home, port=_free_port()))
    finally:
        stop(home)
        shutil.rmtree(home, ignore_errors=True)


def warm_up() -> None:
    """Start Ray's worker processes before anything is timed (two no-op tasks a CPU), so that
    the first side does not pay for the worker pool the others reuse."""
    import ray

    from cluster.units import Unit

    task = ray.remote(noop_compute).options(num_cpus=1)
    cpus = int(ray.cluster_resources()["CPU"])
    ray.get([task.remote(Unit("warm-up", "warm-up"), None) for _ in range(2 * cpus)])


def _restart_ray(num_cpus: int | None) -> None:
    """A fresh Ray instance: a side stopped at its limit leaves thousands of tasks queued."""
    import ray

    from cluster.runtime import init_ray

    ray.shutdown()
    init_ray(num_cpus=num_cpus)
    warm_up()


def _measured(run: Callable, side: str, n: int) -> Measure:
    """One side, its failure kept as the reason, with the machine's load average before and after
    (on a shared machine, what else ran meanwhile decides much of a rate)."""
    before = os.getloadavg()[0]
    try:
        measure = run()
    except Exception as err:  # one side's failure (a neighbour's memory, a server) ends only it
        first = (str(err).strip().splitlines() or [""])[0][:200]
        measure = Measure(side, n, 0, 0.0, failed=f"{type(err).__name__}: {first}")
    load = f"load {before:.0f}-{os.getloadavg()[0]:.0f}"
    measure.note = f"{measure.note}; {load}" if measure.note else load
    return measure


def measure_size(n: int, tag: str, url: str, storage: Path, args) -> dict[str, Measure]:
    """Every side asked for at one size, in the order of SIDES, each printed as it ends."""
    runs = {
        "scheduler": lambda: scheduler_only(n, tag, args.limit_s),
        "+Tracker": lambda: with_tracker(n, tag, url, args.limit_s),
        "Tune": lambda: tune_trials(n, tag, storage, args.limit_s),
        "Tune+MLflow": lambda: tune_trials(n, tag, storage, args.limit_s, url),
    }
    out = {}
    for side in (s for s in SIDES if s in args.sides):
        out[side] = _measured(runs[side], side, n)
        print(out[side].line(), flush=True)
        if out[side].stopped or out[side].failed:
            _restart_ray(args.cpus)
    return out


def _ratio(ours: Measure | None, theirs: Measure | None) -> str:
    return f"{ours.rate / theirs.rate:.2f}x" if ours and theirs and ours.rate and theirs.rate else "n/a"


def _cell(m: Measure | None) -> str:
    if m is None:
        return f"{'-':>12}"
    return f"{'failed':>12}" if m.failed else f"{m.rate:>11,.1f}{'*' if m.stopped else ' '}"


def summary(results: dict[int, dict[str, Measure]]) -> list[str]:
    """The table printed at the end: rates per size and side, and both ratios."""
    head = f"{'size':>7}  " + "  ".join(f"{s:>12}" for s in SIDES)
    head += "  +Tracker/Tune+MLflow  scheduler/Tune"
    lines = ["units (trials) per second; * stopped at the limit", head]
    for n, row in results.items():
        cells = "  ".join(_cell(row.get(s)) for s in SIDES)
        logged = _ratio(row.get("+Tracker"), row.get("Tune+MLflow"))
        bare = _ratio(row.get("scheduler"), row.get("Tune"))
        ratios = f"{logged:>20}  {bare:>14}"
        lines.append(f"{n:>7,}  {cells}  {ratios}")
    return lines


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"integers and commas wanted, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"positive integers wanted, got {text!r}")
    return sizes


def parse_sides(text: str) -> list[str]:
    sides = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in sides if s not in SIDES]
    if unknown or not sides:
        raise argparse.ArgumentTypeError(f"unknown {unknown or text!r}; expected some of {SIDES}")
    return sides


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=parse_sizes, default=[1_000, 10_000, 100_000], help="e.g. 1000,10000")
    p.add_argument("--sides", type=parse_sides, default=list(SIDES), help=f"some of {','.join(SIDES)}")
    p.add_argument("--limit-s", type=float, default=300.0, help="seconds a side may run at one size")
    p.add_argument("--tracking-uri", default=None, help="a running server (default: one started here)")
    p.add_argument("--cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    args = p.parse_args(argv)

    import ray

    from cluster.runtime import init_ray

    # SIGTERM (a neighbour's cleanup, a timeout) ends the run through its finally blocks: the
    # tracking server it started is stopped and its temporary folders removed
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    tag = f"{os.getpid()}-{int(time.time())}"  # keys and experiments of this run only
    storage = Path(tempfile.mkdtemp(prefix="bench-scheduler-tune-"))
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's console boxes stay off this output
    results = {}
    try:
        with tracking_server(args.tracking_uri) as url:
            init_ray(num_cpus=args.cpus)
            warm_up()
            cpus = ray.cluster_resources().get("CPU", 0)
            print(f"tracking server {url} (SQLite); Ray {ray.__version__}, {cpus:g} CPUs", end="")
            print(f"; limit {args.limit_s:g} s a side", flush=True)
            for n in args.sizes:
                results[n] = measure_size(n, tag, url, storage, args)
    finally:
        ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)
    print("\n".join(summary(results)))
    return 1 if any(m.failed for row in results.values() for m in row.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
