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
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ray

from cluster.tracking import Timed, Tracker, stamped, work_window
from cluster.units import Unit, UnitResult
from core.progress import Progress

# Testing hook, JSON {"unit": "<unit name>", "marker": "<file>"[, "hold": true]}: the worker running
# that unit dies once at its fault point, or with "hold" writes where it runs into the marker and
# waits there until "<marker>.release" exists (a test removes its node, or stops a server, meanwhile).
FAULT_ENV = "SWEEPS_FAULT_INJECTION"


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
    """Kill this worker process once when the fault hook names this unit (marker file = once), or
    hold it there (see FAULT_ENV)."""
    if fault and fault.get("unit") == unit.name and not Path(fault["marker"]).exists():
        if not fault.get("hold"):
            Path(fault["marker"]).write_text(str(os.getpid()))
            os._exit(17)
        from cluster.devices import placement

        Path(fault["marker"]).write_text(json.dumps({"pid": os.getpid()} | placement()))
        while not Path(fault["marker"] + ".release").exists():
            time.sleep(0.2)


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
    """The unit's actor is gone (crashed, its node lost, or killed by Ray's memory monitor): the
    unit itself did not fail, so it may run again on a fresh actor."""
    return isinstance(err, ray.exceptions.RayActorError | ray.exceptions.OutOfMemoryError)


class Readiness:
    """Which units can start, kept by dependency counts: each unit knows how many of its
    dependencies have no result yet, each dependency the units waiting on it, so a result costs
    work in proportion to its dependents, never a scan of every pending unit."""

    def __init__(self, nodes: list[Node], results: dict):
        self.ready: deque[Node] = deque()  # in the order of `nodes`, then as they become ready
        self._unmet: dict[str, int] = {}
        self._dependents: dict[str, list[Node]] = {}
        for node in nodes:
            if node.unit.key in results:
                continue
            unmet = [d for d in dict.fromkeys(node.deps) if d not in results]
            for dep in unmet:
                self._dependents.setdefault(dep, []).append(node)
            if unmet:
                self._unmet[node.unit.key] = len(unmet)
            else:
                self.ready.append(node)

    @property
    def blocked(self) -> int:
        """Units still waiting for a dependency."""
        return len(self._unmet)

    def resolved(self, key: str) -> None:
        """Unit `key` has its result: its dependents with nothing else missing become ready."""
        for node in self._dependents.pop(key, ()):
            left = self._unmet[node.unit.key] - 1
            if left:
                self._unmet[node.unit.key] = left
            else:
                del self._unmet[node.unit.key]
                self.ready.append(node)


class Completions:
    """Launched ObjectRefs in the order they finish: each ref's future puts it on a queue, so a
    wait costs the same however many units are in flight (`ray.wait` scans every ref it is
    given: quadratic over a sweep)."""

    def __init__(self):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._futures: dict = {}

    def __len__(self) -> int:
        return len(self._futures)

    def add(self, ref) -> None:
        future = ref.future()
        self._futures[ref] = future
        future.add_done_callback(lambda _f, ref=ref: self._queue.put(ref))

    def next(self):
        """The next finished ref and its future (holding its value, or its error)."""
        while True:
            try:
                ref = self._queue.get(timeout=1.0)  # a timeout keeps Ctrl-C responsive
            except queue.Empty:
                continue
            return ref, self._futures.pop(ref)


MAX_IN_FLIGHT = 2_000  # far more than a cluster's devices, far less than a 100k-unit sweep


def run_graph(
    nodes: list[Node], tracker: Tracker, label: str = "units", max_in_flight: int = MAX_IN_FLIGHT
) -> Outcome:
    """Run every unfinished node as soon as the nodes it depends on have results.

    Ray queues the launched work on the resources each asked for (GPUs, CPUs), so the devices
    stay busy while the driver only tracks readiness and prints progress; its work per unit is
    constant (dependency counts, a completion queue), whatever the size of the sweep. At most
    `max_in_flight` units are launched and unfinished at once: enough to keep every device of a
    cluster queued, while the driver's memory and its wait for the first result stay bounded
    (launching all 100k units of a sweep at once held 4.2 GB and gave the first result after 53 s).
    """
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
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
    readiness = Readiness(nodes, results)
    to_run = len(nodes) - len(results)
    print(
        f"{label}: {len(nodes)} units, {len(skipped)} already finished in MLflow (skipped), "
        f"{to_run} to run"
    )
    progress = Progress(to_run, label, unit="units", every=10) if to_run else None
    in_flight: dict = {}  # ref -> unit key
    completions = Completions()
    relaunched: dict[str, int] = {}

    def launch(node: Node) -> None:
        ref = node.launch(node.unit, {d: results[d] for d in node.deps})
        in_flight[ref] = node.unit.key
        completions.add(ref)

    while readiness.ready or in_flight:
        while readiness.ready and len(in_flight) < max_in_flight:
            launch(readiness.ready.popleft())
        if not in_flight:
            break
        ref, future = completions.next()
        key = in_flight.pop(ref)
        node = by_key[key]
        try:
            # a failure is raised by ray.get, as the workloads expect its exceptions
            results[key] = future.result() if future.exception() is None else ray.get(ref)
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
        readiness.resolved(key)
        progress.update()
    if readiness.blocked:
        raise RuntimeError(f"{readiness.blocked} units can never start: their dependencies form a cycle")
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

    # the work task says when it started, so the unit's run starts then, not when it is logged
    work = ray.remote(stamped(compute)).options(num_cpus=1, max_retries=max_retries, retry_exceptions=False)
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

    def call(self, record: Callable, target: TrackingTarget, result: Timed):
        with work_window(result.started_ms):
            return record(target, result.value)
