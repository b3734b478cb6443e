"""Run a sweep's units on Ray: skip the finished ones, retry the ones whose worker dies.

A unit is a key (hash of its resolved config), a name and its params. Units whose key already
has a FINISHED run in MLflow are not launched again: their `UnitResult` is read back from the
run. The rest become Ray tasks or actor calls (a task whose worker process dies is re-run by
Ray; a unit whose pool actor died is launched again on a fresh member). Shared inputs
(benchmark tables) are put in the object store once. The driver prints units done / total,
rate and ETA.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ray

from cluster.tracking import Tracker
from cluster.units import Unit, UnitResult
from core.progress import Progress

FAULT_ENV = "SWEEPS_FAULT_INJECTION"  # JSON {"unit": "<unit name>", "marker": "<file>"}: testing hook


@dataclass(frozen=True)
class TrackingTarget:
    """Where a worker logs: enough to rebuild a Tracker inside any process."""

    tracking_uri: str
    experiment: str
    parent_run_id: str

    def tracker(self) -> Tracker:
        return _tracker(self.tracking_uri, self.experiment)


_TRACKERS: dict = {}


def _tracker(uri: str, experiment: str) -> Tracker:
    if (uri, experiment) not in _TRACKERS:
        _TRACKERS[(uri, experiment)] = Tracker(uri, experiment)
    return _TRACKERS[(uri, experiment)]


def fault_hook() -> dict | None:
    """The fault-injection request of the environment, if any (tests kill one worker once)."""
    raw = os.environ.get(FAULT_ENV)
    return json.loads(raw) if raw else None


def maybe_die(unit: Unit, fault: dict | None) -> None:
    """Kill this worker process once when the fault hook names this unit (marker file = once)."""
    if fault and fault.get("unit") == unit.name and not Path(fault["marker"]).exists():
        Path(fault["marker"]).write_text(str(os.getpid()))
        os._exit(17)


@dataclass(frozen=True)
class Node:
    """A unit in a dependency graph: `launch(unit, dep_results)` starts it on Ray and returns an
    ObjectRef of its `UnitResult`. A unit finished in an earlier run is read back with its
    metrics and the Parquet artifacts named in `tables` (or by `reuse(unit, run_id)`, when
    given). A unit launched into `pool` whose actor dies is launched again, up to
    `max_relaunch` times."""

    unit: Unit
    launch: Callable
    deps: tuple[str, ...] = ()
    reuse: Callable | None = None
    done: Callable | None = None  # called with (unit, result) when it finishes: release what it held
    tables: tuple[str, ...] = ()
    pool: object | None = None  # a cluster.pools.ActorPool
    max_relaunch: int = 3


@dataclass
class Outcome:
    results: dict[str, UnitResult]  # key -> result of every unit (run now or reused)
    ran: set  # keys run now
    skipped: dict  # key -> run id of units already finished before


def _actor_died(err: Exception) -> bool:
    import ray

    return isinstance(err, ray.exceptions.RayActorError)


def run_graph(nodes: list[Node], tracker: Tracker, label: str = "units") -> Outcome:
    """Run every unfinished node as soon as the nodes it depends on have results.

    Ray queues the launched work on the resources each asked for (GPUs, CPUs), so the devices
    stay busy while the driver only tracks readiness and prints progress.
    """
    import ray

    by_key = {n.unit.key: n for n in nodes}
    if len(by_key) != len(nodes):
        raise ValueError("two units of the sweep have the same key: their configs are identical")
    missing = {d for n in nodes for d in n.deps if d not in by_key}
    if missing:
        raise ValueError(f"units depend on unknown units: {sorted(missing)[:3]}")
    finished = tracker.finished_units()
    skipped = {k: finished[k] for k in by_key if k in finished}
    results = {}
    for key, run_id in skipped.items():
        node = by_key[key]
        if node.reuse:
            results[key] = node.reuse(node.unit, run_id)
        else:
            results[key] = tracker.read_result(key, run_id, node.tables)
    pending = [n for n in nodes if n.unit.key not in results]
    print(
        f"{label}: {len(nodes)} units, {len(skipped)} already finished in MLflow (skipped), "
        f"{len(pending)} to run"
    )
    progress = Progress(len(pending), label, unit="units", every=10) if pending else None
    in_flight: dict = {}
    relaunched: dict[str, int] = {}

    def launch(node: Node) -> None:
        in_flight[node.launch(node.unit, {d: results[d] for d in node.deps})] = node.unit.key

    while pending or in_flight:
        ready = [n for n in pending if all(d in results for d in n.deps)]
        for node in ready:
            launch(node)
            pending.remove(node)
        if not in_flight:
            raise RuntimeError(f"{len(pending)} units can never start: their dependencies form a cycle")
        done, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in done:
            key = in_flight.pop(ref)
            node = by_key[key]
            try:
                results[key] = ray.get(ref)
            except Exception as err:
                if node.pool is None or not _actor_died(err) or relaunched.get(key, 0) >= node.max_relaunch:
                    raise
                relaunched[key] = relaunched.get(key, 0) + 1
                node.pool.failed(ref)
                why = type(err).__name__
                print(f"{node.unit.name}: its actor died ({why}); launching it again", flush=True)
                launch(node)
                continue
            if node.pool is not None:
                node.pool.done(ref)
            if node.done:
                node.done(node.unit, results[key])
            progress.update()
    return Outcome(results, set(by_key) - set(skipped), skipped)


def run_units(
    units: list[Unit],
    compute: Callable,
    record: Callable,
    target: TrackingTarget,
    shared: tuple = (),
    max_retries: int = 3,
    label: str = "units",
    tables: tuple[str, ...] = (),
) -> Outcome:
    """Independent units: `compute(unit, fault, *shared)` on one CPU, then `record(target,
    result)` logging it on no CPU, so the CPUs never wait on the tracking server. Shared inputs
    are put in the object store once; each task is retried when its worker dies. A unit
    finished before is read back with the Parquet artifacts named in `tables`."""
    launch = unit_launcher(compute, record, target, shared, max_retries)
    return run_graph([Node(u, launch, tables=tables) for u in units], target.tracker(), label)


def unit_launcher(
    compute: Callable, record: Callable, target: TrackingTarget, shared: tuple = (), max_retries: int = 3
) -> Callable:
    """A Node.launch that chains a computing task (one CPU) and its logging, done by one logger
    actor (no CPU, a warm process) so that the CPUs never wait on the tracking server."""
    import ray

    work = ray.remote(compute).options(num_cpus=1, max_retries=max_retries, retry_exceptions=False)
    logger = RunLogger.options(num_cpus=0, max_concurrency=4).remote()
    refs: tuple = ()
    fault = fault_hook()

    def launch(unit, _deps):
        nonlocal refs
        if not refs and shared:
            # once, not once per task (values already in the object store are passed as they are)
            refs = tuple(x if isinstance(x, ray.ObjectRef) else ray.put(x) for x in shared)
        return logger.call.remote(record, target, work.remote(unit, fault, *refs))

    return launch


@ray.remote(max_restarts=-1, max_task_retries=3)
class RunLogger:
    """Runs `record(target, result)` calls: one long-lived process logs every unit's run."""

    def call(self, record: Callable, target: TrackingTarget, result):
        return record(target, result)
