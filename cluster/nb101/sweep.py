"""The chapter-4 study as one unit graph: baselines, supernets, correlation evaluations and
weight-sharing searches; the report is in `cluster.nb101.report`.

Units and their dependencies: baseline searches (independent), supernets, correlation
evaluations (after their supernet), WS searches RS_ws / GS_ws (after their supernet). Keys
are those of the standalone jobs (jobs/nb101_baselines.py, jobs/ws_correlation.py), so any unit
those already finished is reused here, and a crashed or stopped sweep resumes from MLflow.
"""

from __future__ import annotations

from collections import deque

import pyarrow as pa
import ray

from cluster.nb101.baselines import STEPS, baseline_search, log_search, record_search
from cluster.nb101.baselines import plan as baseline_plan
from cluster.nb101.clock import Clock, resolve_clock
from cluster.nb101.config import SweepConfig
from cluster.nb101.correlation import Study
from cluster.scheduler import Node, TrackingTarget, maybe_die, unit_launcher
from cluster.tracking import timed
from cluster.units import Unit, UnitResult
from core.keys import stable_key
from search.space_data import SpaceData
from search.ws_search import search_proxy, train_ranked

UNIT_VERSION = 3  # of the WS searches (3: every visited cell evaluated, on the sweep's one clock)


def ws_search_unit(
    unit: Unit,
    target: TrackingTarget,
    fault,
    spaces: dict,
    evaluator,
    supernet: UnitResult,
    recipe: dict,
    proxies: dict,
    supernet_seconds: float,
    _after: UnitResult | None = None,
) -> UnitResult:
    """Ray task: one WS search (proxy search, then every visited cell evaluated best proxy
    first), logged as a child run. The clock charges `supernet_seconds`, `proxies[space][row]`
    per proxy evaluation and each cell's training on the space's clock (`spaces`). `_after`
    (unused) is the result of the search this one queues behind (`Sweep.launch_ws`)."""
    maybe_die(unit, fault)
    p = unit.params
    space: SpaceData = spaces[p["space"]]
    proxy_cost = proxies[p["space"]]

    def score(hashes):
        rows = [space.row(h) for h in hashes]
        specs = [space.spec(r) for r in rows]
        values, _measured = ray.get(evaluator.score_specs.remote(supernet.run_id, recipe, specs, "BNS-FT"))
        return values, float(proxy_cost[rows].sum())

    found = search_proxy(p["method"], space, p["seed"], p["ws_budget"], score)
    start = supernet_seconds + found.seconds
    trajectory = train_ranked(found, space, start, p["seed"], p["validation"], p.get("trained_cells"))
    regret, times = trajectory["regret"].to_numpy(), trajectory["sim_time"].to_numpy()
    metrics = {
        "first_regret": float(regret[0]),
        "first_time": float(times[0]),
        "final_regret": float(regret[-1]),
        "sim_time_total": float(times[-1]),
        "supernet_seconds": supernet_seconds,
        "cells_evaluated": trajectory.num_rows,
    }
    metrics |= {k: float(v) for k, v in found.stats.items() if isinstance(v, int | float | bool)}
    role = f"{p['method']}_ws"
    return log_search(
        target,
        unit,
        params=p | {"method": role, "supernet_run": supernet.run_id},
        metrics=metrics,
        trajectory=trajectory,
        tags={"role": "ws-search", "space": p["space"], "method": role},
        extra={"proxy_search.parquet": pa.table({"hash": found.hashes, "proxy": found.proxies})},
    )


# WS searches in flight per evaluator actor: one scoring while the other proposes its next cells.
# A search mostly waits for its evaluator, so more would only hold a worker process each (torch
# imported, ~0.4 GB): 36 at once on one evaluator ran a 24 GB node out of memory.
SEARCHES_PER_EVALUATOR = 2


class Sweep:
    """The whole study's units for one config and benchmark (planned without Ray), then, once
    opened on a sweep, its nodes."""

    def __init__(
        self,
        config: SweepConfig,
        bench,
        spaces: list[str],
        identity: str,
        fault: dict | None = None,
        clock: Clock | None = None,
    ):
        """`clock`: what every search is charged on (default: the config's, resolved on `bench`)."""
        self.config, self.bench, self.spaces, self.fault = config, bench, spaces, fault
        self.clock = clock or resolve_clock(config, bench, config.supernet)
        self.study = Study(config.correlation(), bench, spaces, identity, fault, replicates=config.ws_seeds)
        if config.correlation_supernets == 0:  # keep the supernets, drop the correlation evaluations
            self.study.evaluations = []
        self.baseline_units = baseline_plan(config.baselines(), bench, spaces, self.clock)
        ready = self.clock.name != "calibrated" or self.clock.table is not None  # else: a dry run
        self.space_data = {
            s: self.clock.timed(d) if ready else d
            for s, d in ((s, SpaceData.from_benchmark(bench, s)) for s in spaces)
        }
        self.target: TrackingTarget | None = None
        self._shared = None
        self._baseline_launch = None
        self._queues: dict[int, deque] = {}  # evaluator index -> its last searches' refs
        self.ws_units: list[Unit] = []
        charged = self.clock.identity
        for (space, variant, seed), sn in self.study.supernets.items():
            if seed >= config.ws_seeds:
                continue
            for method in config.methods:
                params = {
                    "kind": "nb101-ws-search",
                    "version": UNIT_VERSION,
                    "supernet": sn.key,
                    "space": space,
                    "variant": variant,
                    "method": method,
                    "seed": seed,
                    "ws_budget": config.ws_budget,
                    "trained_cells": config.trained_cells,
                    "validation": config.validation,
                } | charged
                unit = Unit(stable_key(params), f"{space}/{variant}/{method}_ws/seed{seed}", params)
                self.ws_units.append(unit)

    def units(self) -> list[Unit]:
        return self.baseline_units + self.study.units() + self.ws_units

    def open(self, target: TrackingTarget) -> None:
        """Where units log, known once the sweep's parent run exists (its key needs the units);
        Ray must be running."""
        self.target = target
        self.study.open(target)

    def close(self) -> None:
        self.study.close()

    def nodes(self) -> list[Node]:
        """Baselines, the study's supernets and evaluations, WS searches after their supernet;
        every search is read back with its regret steps when it is reused."""
        nodes = [Node(u, self.launch_baseline, tables=(STEPS,)) for u in self.baseline_units]
        nodes += self.study.nodes()
        nodes += [
            Node(u, self.launch_ws, deps=(u.params["supernet"],), tables=(STEPS,)) for u in self.ws_units
        ]
        return nodes

    def _refs(self):
        """The spaces (charged on the clock), the report steps and each space's proxy costs, in
        the object store once."""
        if self._shared is None:
            proxies = {s: self.clock.proxy(d) for s, d in self.space_data.items()}
            self._shared = (ray.put(self.space_data), ray.put([100, 1000, 10_000]), ray.put(proxies))
        return self._shared

    def launch_baseline(self, unit: Unit, deps):
        if self._baseline_launch is None:
            self._baseline_launch = unit_launcher(
                baseline_search, record_search, self.target, self._refs()[:2], self.config.max_retries
            )
        return self._baseline_launch(unit, deps)

    def launch_ws(self, unit: Unit, deps: dict[str, UnitResult]):
        """A WS search as a Ray task on its supernet's evaluator. It takes the ref of the search
        launched SEARCHES_PER_EVALUATOR before it on that evaluator as an argument: Ray leases
        no worker to a task until its ref arguments are ready, so at most that many searches of
        an evaluator hold a process at once, and the others cost nothing while they wait."""
        supernet_key = unit.params["supernet"]
        recipe = self.study.recipes[supernet_key].model_dump()
        # a WS search mostly waits for its evaluator: it holds no CPU, so it never blocks one
        task = ray.remote(timed(ws_search_unit)).options(  # its run starts when the search does
            num_cpus=0, max_retries=self.config.max_retries, retry_exceptions=False
        )
        space = unit.params["space"]
        queue = self._queues.setdefault(
            self.study.evaluators.pick(supernet_key), deque(maxlen=SEARCHES_PER_EVALUATOR)
        )
        ref = task.remote(
            unit,
            self.target,
            self.fault,
            self._refs()[0],
            self.study.evaluator(supernet_key),
            deps[supernet_key],
            recipe,
            self._refs()[2],
            self.clock.supernet(self.space_data[space], self.study.recipes[supernet_key]),
            queue[0] if len(queue) == queue.maxlen else None,  # the search it queues behind
        )
        queue.append(ref)
        return ref

    def dry_run(self, finished: dict) -> str:
        """What would run: units per kind, what is reused, the clock, the time the searches
        simulate on it, the device work by kind and the wall time (cluster/nb101/estimate.py)."""
        from cluster.nb101.estimate import describe

        kinds: dict[str, list[int]] = {}
        units = self.units()
        for unit in units:
            kind = unit.params.get("kind", "?")
            done = unit.key in finished
            kinds.setdefault(kind, [0, 0])[done] += 1
        lines = [f"{'unit kind':22s} {'to run':>8s} {'reused':>8s}"]
        lines += [f"{k:22s} {v[0]:8d} {v[1]:8d}" for k, v in kinds.items()]
        proxies = len(self.ws_units) * self.config.ws_budget + sum(
            e.params["cells"] * len(e.params["modes"].split(",")) for e in self.study.evaluations
        )
        lines.append(f"total: {len(units)} units; {proxies:,} proxy evaluations")
        return "\n".join(lines + describe(self, finished))

    # ---- results ---------------------------------------------------------------------
    def trajectories(self, results: dict[str, UnitResult]) -> pa.Table:
        """Every search's regret steps: space, method (RS_bs, GS_bs, RS_ws, GS_ws), run_id, time,
        step, regret."""
        parts = []
        for unit in self.baseline_units + self.ws_units:
            t = results[unit.key].table(STEPS)
            suffix = "ws" if unit.params["kind"] == "nb101-ws-search" else "bs"
            label = f"{unit.params['method']}_{suffix}"  # the param `method` its run logs
            if unit.params.get("variant", "uniform") != "uniform":
                label += f"[{unit.params['variant']}]"
            n = t.num_rows
            parts.append(
                pa.table(
                    {
                        "space": [unit.params["space"]] * n,
                        "method": [label] * n,
                        "run_id": [unit.key] * n,
                        "time": t["sim_time"],
                        "step": t["step"],
                        "regret": t["regret"],
                    }
                )
            )
        return pa.concat_tables(parts)
