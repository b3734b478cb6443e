"""The chapter-4 study as one unit graph: baselines, supernets, correlation evaluations and
weight-sharing searches, then the report (tables 4.3-4.5, fig. 4.2, a power report).

Units and their dependencies: baseline searches (independent), supernets, correlation
evaluations (after their supernet), WS searches RS_ws / GS_ws (after their supernet). Keys
are those of the standalone jobs (jobs/nb101_baselines.py, jobs/ws_correlation.py), so any unit
those already finished is reused here, and a crashed or stopped sweep resumes from MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import ray
from pydantic import Field, field_validator

from cluster.baselines import BaselinesConfig, baseline_search, record_search
from cluster.baselines import plan as baseline_plan
from cluster.scheduler import Node, TrackingTarget, Unit, maybe_die, unit_launcher
from cluster.ws_correlation import EMBEDDED_RECIPE, Study, WSCorrelationConfig
from core.config import Config
from core.keys import stable_key
from core.nb101.space import check_subspaces
from search.regret import change_points
from search.space_data import SpaceData
from search.ws_search import search_proxy, train_ranked

UNIT_VERSION = 1

PRESETS = {
    "smoke": {
        "spaces": ["A2"],
        "ws_seeds": 2,
        "baseline_seeds": 3,
        "budget": 60,
        "ws_budget": 40,
        "trained_cells": 10,
        "correlation_supernets": 1,
        "correlation_cells": 20,
        "clock": "modelled",
        "supernet_seconds": 36_000.0,  # a supernet costs hours of GPU time, as in the thesis
        "supernet": EMBEDDED_RECIPE | {"epochs": 3, "checkpoint_every": 1},
    },
    "default": {
        "ws_seeds": 3,
        "baseline_seeds": 20,
        "budget": 1000,
        "ws_budget": 300,
        "trained_cells": 50,
        "correlation_supernets": 3,
        "correlation_cells": 300,
        "supernet": EMBEDDED_RECIPE,
    },
    "thesis": {
        "ws_seeds": 25,
        "baseline_seeds": 100,
        "budget": 10_000,
        "ws_budget": 10_000,
        "trained_cells": 100,
        "correlation_supernets": 5,
        "correlation_cells": 1000,
        "variants": ["uniform"],
        "supernet": {"dataset": "cifar10"},
    },
}


class SweepConfig(Config):
    experiment: str = "nb101-sweep"
    sweep_name: str = "nb101-sweep"
    benchmark: str | None = Field(
        None, description="None: embedded mini-benchmark; 'real-subset'; or a Parquet path"
    )
    spaces: list[str] | None = None
    variants: list[Literal["uniform", "SINGLE-K", "PRO-RATA", "AVG-3", "S-K+P-R"]] = ["uniform"]
    methods: list[Literal["RS", "GS"]] = ["RS", "GS"]
    ws_seeds: int = Field(25, ge=2)
    baseline_seeds: int = Field(100, ge=2)
    budget: int = Field(10_000, ge=1, description="baseline evaluations per search")
    ws_budget: int = Field(10_000, ge=1, description="proxy evaluations per WS search")
    trained_cells: int = Field(100, ge=1, description="best cells by proxy trained after a WS search")
    correlation_supernets: int = Field(5, ge=0)
    correlation_cells: int = Field(1000, ge=2)
    validation: Literal["sample", "mean"] = "sample"
    clock: Literal["measured", "modelled"] = "measured"
    supernet_seconds: float = Field(0.0, ge=0, description="modelled clock: seconds charged per supernet")
    proxy_seconds: float = Field(4.0, ge=0, description="modelled clock: seconds per proxy evaluation")
    supernet: dict = Field(default_factory=dict, description="SupernetConfig overrides")
    evaluators: int = Field(2, ge=1)
    gpus_per_trainer: float = Field(1.0, ge=0)
    gpus_per_evaluator: float = Field(0.5, ge=0)
    max_retries: int = Field(3, ge=0)
    tracking_uri: str | None = None
    ray_address: str | None = None
    output_dir: str = "outputs/nb101_sweep"

    @field_validator("spaces")
    @classmethod
    def _spaces(cls, spaces):
        return check_subspaces(spaces)

    def baselines(self) -> BaselinesConfig:
        return BaselinesConfig(
            experiment=self.experiment,
            benchmark=self.benchmark,
            spaces=self.spaces,
            methods=self.methods,
            seeds=self.baseline_seeds,
            budget=self.budget,
            validation=self.validation,
        )

    def correlation(self) -> WSCorrelationConfig:
        return WSCorrelationConfig(
            experiment=self.experiment,
            benchmark=self.benchmark,
            spaces=self.spaces,
            variants=self.variants,
            supernets=self.correlation_supernets or 1,
            cells=self.correlation_cells,
            supernet=self.supernet,
            gpus_per_trainer=self.gpus_per_trainer,
            gpus_per_evaluator=self.gpus_per_evaluator,
            evaluators=self.evaluators,
        )


def ws_search_unit(
    unit: Unit,
    target: TrackingTarget,
    fault,
    spaces: dict,
    evaluator,
    supernet: dict,
    recipe: dict,
    clock: dict,
) -> dict:
    """Ray task: one WS search (proxy search, then the best cells trained), logged as a child run."""
    maybe_die(unit, fault)
    p = unit.params
    space: SpaceData = spaces[p["space"]]

    def score(hashes):
        specs = [space.spec(space.row(h)) for h in hashes]
        values, seconds = ray.get(evaluator.score_specs.remote(supernet["run_id"], recipe, specs, "BNS-FT"))
        return values, (seconds if clock["clock"] == "measured" else clock["proxy_seconds"] * len(hashes))

    found = search_proxy(p["method"], space, p["seed"], p["ws_budget"], score)
    if clock["clock"] == "measured":
        supernet_seconds = float(supernet["metrics"]["train_seconds"])
    else:
        supernet_seconds = clock["supernet_seconds"]
    trajectory = train_ranked(
        found, space, supernet_seconds + found.seconds, p["trained_cells"], p["seed"], p["validation"]
    )
    regret, times = trajectory["regret"].to_numpy(), trajectory["sim_time"].to_numpy()
    metrics = {
        "first_regret": float(regret[0]),
        "first_time": float(times[0]),
        "final_regret": float(regret[-1]),
        "sim_time_total": float(times[-1]),
        "supernet_seconds": supernet_seconds,
    }
    metrics |= {k: float(v) for k, v in found.stats.items() if isinstance(v, int | float | bool)}
    run_id = target.tracker().log_unit(
        target.parent_run_id,
        unit.key,
        unit.name,
        params=p | {"supernet_run": supernet["run_id"]},
        metrics=metrics,
        tables={
            "trajectory.parquet": trajectory,
            "proxy_search.parquet": pa.table({"hash": found.hashes, "proxy": found.proxies}),
        },
        tags={"role": "ws-search", "space": p["space"], "method": f"{p['method']}_ws"},
    )
    return {"key": unit.key, "run_id": run_id, "metrics": metrics, "trajectory": trajectory}


class Sweep:
    """The whole study's units for one config and benchmark."""

    def __init__(
        self,
        config: SweepConfig,
        bench,
        spaces: list[str],
        target: TrackingTarget,
        identity: str,
        fault: dict | None = None,
    ):
        self.config, self.bench, self.spaces, self.target, self.fault = config, bench, spaces, target, fault
        self.study = Study(
            config.correlation(), bench, spaces, target, identity, fault, replicates=config.ws_seeds
        )
        if config.correlation_supernets == 0:  # keep the supernets, drop the correlation evaluations
            evals = {u.key for u in self.study.evaluations}
            self.study.nodes = [n for n in self.study.nodes if n.unit.key not in evals]
            self.study.evaluations = []
        self.baseline_units = baseline_plan(config.baselines(), bench, spaces)
        self.space_data = {s: SpaceData.from_benchmark(bench, s) for s in spaces}
        self._shared = None
        self._baseline_launch = None
        self.ws_units: list[Unit] = []
        nodes = [Node(u, self.launch_baseline, reuse=self.reuse_search) for u in self.baseline_units]
        nodes += self.study.nodes
        clock = self.clock()
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
                } | clock
                unit = Unit(stable_key(params), f"{space}/{variant}/{method}_ws/seed{seed}", params)
                self.ws_units.append(unit)
                nodes.append(Node(unit, self.launch_ws, deps=(sn.key,), reuse=self.reuse_search))
        self.nodes = nodes

    def set_target(self, target: TrackingTarget) -> None:
        """Where units log: known once the sweep's parent run exists (its key needs the units)."""
        self.target = target
        self.study.target = target

    def clock(self) -> dict:
        if self.config.clock == "measured":
            return {"clock": "measured"}
        return {
            "clock": "modelled",
            "supernet_seconds": self.config.supernet_seconds,
            "proxy_seconds": self.config.proxy_seconds,
        }

    def _refs(self):
        if self._shared is None:
            self._shared = (ray.put(self.space_data), ray.put([100, 1000, 10_000]))
        return self._shared

    def launch_baseline(self, unit: Unit, deps):
        if self._baseline_launch is None:
            self._baseline_launch = unit_launcher(
                baseline_search, record_search, self.target, self._refs(), self.config.max_retries
            )
        return self._baseline_launch(unit, deps)

    def launch_ws(self, unit: Unit, deps: dict):
        supernet_key = unit.params["supernet"]
        recipe = self.study.recipes[supernet_key].model_dump()
        # a WS search mostly waits for its evaluator: it holds no CPU, so it never blocks one
        task = ray.remote(ws_search_unit).options(
            num_cpus=0, max_retries=self.config.max_retries, retry_exceptions=False
        )
        return task.remote(
            unit,
            self.target,
            self.fault,
            self._refs()[0],
            self.study.evaluator(supernet_key),
            deps[supernet_key],
            recipe,
            self.clock(),
        )

    def reuse_search(self, unit: Unit, run_id: str) -> dict:
        return {
            "key": unit.key,
            "run_id": run_id,
            "trajectory": self.target.tracker().load_table(run_id, "trajectory.parquet"),
        }

    def dry_run(self, finished: dict) -> str:
        """What would run: units per kind, what is reused, and the simulated cost."""
        kinds: dict[str, list[int]] = {}
        for node in self.nodes:
            kind = node.unit.params.get("kind", "?")
            done = node.unit.key in finished
            kinds.setdefault(kind, [0, 0])[done] += 1
        lines = [f"{'unit kind':22s} {'to run':>8s} {'reused':>8s}"]
        lines += [f"{k:22s} {v[0]:8d} {v[1]:8d}" for k, v in kinds.items()]
        cost = self.simulated_cost()
        lines.append(f"total: {len(self.nodes)} units; simulated cost {cost['description']}")
        return "\n".join(lines)

    def simulated_cost(self) -> dict:
        """Benchmark seconds the searches simulate, and an estimate of the real work."""
        mean_time = {s: float(np.nanmean(d.training_time)) for s, d in self.space_data.items()}
        sim = sum(
            mean_time[u.params["space"]] * min(u.params["budget"], len(self.space_data[u.params["space"]]))
            for u in self.baseline_units
        )
        recipe = next(iter(self.study.recipes.values()))
        supernets = len(self.study.supernets)
        proxies = (
            len(self.ws_units) * self.config.ws_budget
            + len(self.study.evaluations) * self.config.correlation_cells
        )
        text = (
            f"{sim / 3600:,.0f} simulated GPU-hours of baseline training; {supernets} supernets x "
            f"{recipe.epochs} epochs on {recipe.dataset}; {proxies:,} proxy evaluations"
        )
        return {
            "baseline_seconds": sim,
            "supernets": supernets,
            "proxy_evaluations": proxies,
            "description": text,
        }

    # ---- results ---------------------------------------------------------------------
    def trajectories(self, results: dict) -> pa.Table:
        """Every search's regret steps: space, method (RS_bs, GS_bs, RS_ws, GS_ws), run_id, time,
        step, regret."""
        parts = []
        for unit in self.baseline_units + self.ws_units:
            result = results[unit.key]  # a fresh baseline returns its steps, the rest trajectories
            t = change_points(result["trajectory"] if "trajectory" in result else result["steps"])
            suffix = "ws" if unit.params["kind"] == "nb101-ws-search" else "bs"
            label = f"{unit.params['method']}_{suffix}"
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


def power_report(oneshot: pa.Table, ws_seeds: int, baseline_seeds: int) -> pa.Table:
    """For each comparison: WS seeds needed for power 0.8 at the observed d, and whether the
    sweep had them."""
    from stats import runs_needed

    rows = []
    for r in oneshot.to_pylist():
        d = r["cohen_d"]
        try:
            needed = runs_needed(abs(d), n_other=baseline_seeds) if np.isfinite(d) and d != 0 else None
        except ValueError:
            needed = None  # out of reach against this many baseline runs
        rows.append(
            {
                "space": r["space"],
                "pair": r["pair"],
                "cohen_d": d,
                "ws_seeds": ws_seeds,
                "baseline_seeds": baseline_seeds,
                "ws_seeds_needed": needed,
                "enough": bool(needed is not None and ws_seeds >= needed),
            }
        )
    return pa.Table.from_pylist(rows)


def report(sweep: Sweep, results: dict, out_dir: Path) -> tuple[str, list[Path]]:
    """Tables 4.3, 4.4/4.5 and the power report, fig. 4.2 per space; files for the parent run."""
    from cluster.ws_correlation import report as correlation_report_files
    from stats.figures import regret_figure, save_figure
    from stats.regret import log_grid, regret_curves
    from stats.tables import Report, oneshot_report, to_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    files, parts = [], []
    trajectories = sweep.trajectories(results)
    try:
        oneshot = oneshot_report(trajectories)
    except ValueError as err:  # e.g. a baseline run has no evaluation yet at the WS budget
        parts.append(f"## One-shot regret differences (tables 4.4 / 4.5)\n\nnot computable: {err}")
    else:
        files += list(oneshot.write(out_dir).values())
        parts.append("## One-shot regret differences (tables 4.4 / 4.5)\n\n" + oneshot.markdown)
        table = power_report(oneshot.table, sweep.config.ws_seeds, sweep.config.baseline_seeds)
        power = Report("power", table, to_markdown(table))
        files += list(power.write(out_dir).values())
        parts.append("## Power (two-sided t-test, alpha 0.05, power 0.8)\n\n" + power.markdown)
    if sweep.study.evaluations:
        markdown, corr_files = correlation_report_files(sweep.study, sweep.study.proxies(results), out_dir)
        files += corr_files
        parts.append("## Correlation (table 4.3)\n\n" + markdown)
    frame = trajectories.to_pandas()
    for space, group in frame.groupby("space", sort=False):
        grid = log_grid(group["time"].to_numpy(), 200)
        fig = regret_figure(
            regret_curves(group, by="method", grid=grid),
            title=f"{space}: test regret vs time ({sweep.config.clock} clock)",
            xlabel=f"time (s, {sweep.config.clock}: benchmark training, supernet, proxies)",
        )
        files.append(save_figure(fig, out_dir / f"regret_{space}.png"))
    path = out_dir / "trajectories.parquet"
    import pyarrow.parquet as pq

    pq.write_table(trajectories, path, compression="zstd")
    files.append(path)
    markdown = "\n\n".join(parts) + "\n"
    (out_dir / "report.md").write_text(markdown)
    files.append(out_dir / "report.md")
    return markdown, files
