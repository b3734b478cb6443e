"""Run a sweep's units on Ray: skip the finished ones, retry the ones whose worker dies.

A unit is a key (hash of its resolved config), a name and its params. Units whose key already
has a FINISHED run in MLflow are not launched again; the rest become Ray tasks (max_retries:
a task whose worker process dies is re-run from scratch). Shared inputs (benchmark tables) are
put in the object store once. The driver prints units done / total, rate and ETA.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cluster.runtime import wait_all
from cluster.tracking import Tracker
from core.progress import Progress

FAULT_ENV = "SWEEPS_FAULT_INJECTION"  # JSON {"unit": "<unit name>", "marker": "<file>"}: testing hook


@dataclass(frozen=True)
class Unit:
    key: str
    name: str
    params: dict = field(default_factory=dict)


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


@dataclass
class SweepRun:
    results: dict  # key -> what the unit task returned (for units run now)
    skipped: dict  # key -> run id of units already finished before


def run_units(
    units: list[Unit],
    task: Callable,
    target: TrackingTarget,
    shared: tuple = (),
    max_retries: int = 3,
    label: str = "units",
) -> SweepRun:
    """Launch every unfinished unit as `task(unit, target, fault, *shared_refs)` on Ray."""
    import ray

    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        raise ValueError("two units of the sweep have the same key: their configs are identical")
    finished = target.tracker().finished_units()
    skipped = {u.key: finished[u.key] for u in units if u.key in finished}
    todo = [u for u in units if u.key not in finished]
    print(
        f"{label}: {len(units)} units, {len(skipped)} already finished in MLflow (skipped), "
        f"{len(todo)} to run"
    )
    if not todo:
        return SweepRun({}, skipped)
    refs_shared = tuple(ray.put(x) for x in shared)  # once, not once per task
    remote = ray.remote(task).options(num_cpus=1, max_retries=max_retries, retry_exceptions=False)
    fault = fault_hook()
    refs = [remote.remote(u, target, fault, *refs_shared) for u in todo]
    results = wait_all(refs, Progress(len(todo), label, unit="units", every=10))
    return SweepRun({r["key"]: r for r in results}, skipped)
