"""The baseline NAS sweep (thesis 4.3.3): RS and GS, many seeds, every NB-101 sub-space.

`plan()` turns a `BaselinesConfig` into units (one per space x method x seed) with stable keys;
`baseline_search` runs one on a CPU and `record_search` logs it. Every search of chapter 4
(baseline or WS) is logged by `log_search`: its trajectory and its regret steps (the change
points of the regret curve) as Parquet artifacts, its regret and simulated time against the
evaluation index as step metrics (curves the MLflow UI overlays), and the param `method` naming
its role (RS_bs, GS_bs, RS_ws, GS_ws: what `python -m stats table oneshot` pairs); its
`UnitResult` carries the steps under `STEPS`, the one table the reports read, whether the search
ran now or was reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cluster.nb101.benchmark import benchmark_identity
from cluster.nb101.clock import Clock
from cluster.nb101.config import BaselinesConfig
from cluster.scheduler import TrackingTarget, maybe_die
from cluster.units import Unit, UnitResult
from core.keys import stable_key
from core.nb101.benchmark import Benchmark
from search.regret import change_points
from search.runner import run_search
from search.space_data import SpaceData

UNIT_VERSION = 2  # bump when a unit's results would change for the same config (2: STEPS logged)
TRAJECTORY = "trajectory.parquet"  # one row per evaluation (or trained cell)
STEPS = "regret_steps.parquet"  # the rows where the regret changes, and the last one


def plan(
    config: BaselinesConfig, bench: Benchmark, spaces: list[str], clock: Clock | None = None
) -> list[Unit]:
    """One unit per (space, method, seed); the key covers everything that decides its result
    (the clock's, when it is not the benchmark file's times)."""
    identity = benchmark_identity(bench)
    charged = clock.cell_identity if clock is not None else {}
    units = []
    for space in spaces:
        for method in config.methods:
            for seed in range(config.first_seed, config.first_seed + config.seeds):
                params = {
                    "kind": "nb101-baseline",
                    "version": UNIT_VERSION,
                    "benchmark": identity,
                    "space": space,
                    "method": method,
                    "seed": seed,
                    "budget": config.budget,
                    "validation": config.validation,
                } | charged
                units.append(Unit(stable_key(params), f"{space}/{method}/seed{seed}", params))
    return units


def summarize(trajectory: pa.Table, report_steps: list[int]) -> dict:
    """Summary metrics of one search: final regret, regret at fixed budgets, clock."""
    regret = trajectory["regret"].to_numpy()
    times = trajectory["sim_time"].to_numpy()
    out = {"final_regret": float(regret[-1]), "evaluations": len(regret), "sim_time_total": float(times[-1])}
    for step in report_steps:
        if step <= len(regret):
            out[f"regret_at_{step}"] = float(regret[step - 1])
    return out


@dataclass(frozen=True)
class Searched:
    """A finished baseline search on its way from the CPU that ran it to its logger."""

    unit: Unit
    metrics: dict
    trajectory: pa.Table


def baseline_search(unit: Unit, fault: dict | None, spaces: dict, report_steps: list) -> Searched:
    """Ray task (one CPU): run one search; its logging is a separate task (`record_search`)."""
    maybe_die(unit, fault)
    p = unit.params
    space: SpaceData = spaces[p["space"]]
    result = run_search(p["method"], space, p["seed"], p["budget"], p["validation"])
    metrics = summarize(result.trajectory, report_steps) | {
        k: float(v) for k, v in result.stats.items() if isinstance(v, int | float | bool)
    }
    return Searched(unit, metrics, result.trajectory)


def record_search(target: TrackingTarget, searched: Searched) -> UnitResult:
    """Ray task (no CPU: it waits on the tracking server): log a finished search as a child run,
    so the CPU goes on to the next search meanwhile."""
    p = searched.unit.params
    clock = p.get("clock", "benchmark")
    return log_search(
        target,
        searched.unit,
        params=p | {"method": f"{p['method']}_bs", "clock": clock},
        metrics=searched.metrics,
        trajectory=searched.trajectory,
        tags={"space": p["space"], "method": f"{p['method']}_bs", "role": "baseline-search"},
    )


def log_search(
    target: TrackingTarget,
    unit: Unit,
    params: dict,
    metrics: dict,
    trajectory: pa.Table,
    tags: dict,
    extra: dict[str, pa.Table] | None = None,
) -> UnitResult:
    """Log one search (baseline or WS) as a child run: its trajectory, its regret steps and any
    `extra` tables; the result holds the steps (a few rows, where the full trajectory of a
    baseline has one per evaluation)."""
    steps = change_points(trajectory)
    tables = {TRAJECTORY: trajectory, STEPS: steps} | (extra or {})
    tracker = target.tracker()
    run_id = tracker.log_unit(target.parent_run_id, unit.key, unit.name, params, metrics, tables, tags)
    series = {"regret": trajectory["regret"].to_numpy(), "sim_time": trajectory["sim_time"].to_numpy()}
    tracker.log_curve(run_id, trajectory["step"].to_numpy(), series)
    return UnitResult(unit.key, run_id, metrics, {STEPS: steps})


def curves_table(units: list[Unit], results: dict[str, UnitResult]) -> pa.Table:
    """All units' regret step functions in one table: space, method, seed, run, time, step, regret."""
    parts = []
    for unit in units:
        t = results[unit.key].table(STEPS)
        n = t.num_rows
        parts.append(
            pa.table(
                {
                    "space": [unit.params["space"]] * n,
                    "method": [unit.params["method"]] * n,
                    "seed": np.full(n, unit.params["seed"], dtype=np.int32),
                    "run_id": [unit.key] * n,
                    "time": t["sim_time"],
                    "step": t["step"],
                    "regret": t["regret"],
                }
            )
        )
    return pa.concat_tables(parts)
