"""The baseline NAS sweep (thesis 4.3.3): RS and GS, many seeds, every NB-101 sub-space.

`BaselinesConfig` is the sweep's validated config; `plan()` turns it into units (one per
space x method x seed) with stable keys; `baseline_search` is the Ray task that runs one unit
and logs it as a child run; `report()` builds the regret table and figures from the results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from cluster.scheduler import TrackingTarget, Unit, maybe_die
from core.config import Config, ConfigError
from core.keys import stable_key
from core.nb101.benchmark import Benchmark
from core.nb101.space import SUBSPACES, check_subspaces
from search.regret import change_points
from search.runner import METHODS, run_search
from search.space_data import SpaceData

REAL_SUBSET = "real-subset"  # --benchmark value: the 151,644 real NB-101 cells shipped with the project
UNIT_VERSION = 1  # bump when a unit's results would change for the same config


class BaselinesConfig(Config):
    experiment: str = "nb101-baselines"
    sweep_name: str = "nb101-baselines"
    benchmark: str | None = Field(
        None, description=f"benchmark Parquet; None: embedded mini-benchmark; '{REAL_SUBSET}'"
    )
    spaces: list[str] | None = Field(None, description="None: every sub-space with cells in the benchmark")
    methods: list[Literal["RS", "GS"]] = ["RS", "GS"]
    seeds: int = Field(100, ge=1)
    first_seed: int = Field(0, ge=0)
    budget: int = Field(10_000, ge=1, description="evaluations per search")
    validation: Literal["sample", "mean"] = "sample"
    report_steps: list[int] = [100, 1000, 10_000]
    tracking_uri: str | None = None
    ray_address: str | None = None
    output_dir: str = "outputs/nb101_baselines"
    max_retries: int = Field(3, ge=0)

    @field_validator("spaces")
    @classmethod
    def _known_spaces(cls, spaces):
        return check_subspaces(spaces)

    @field_validator("methods")
    @classmethod
    def _some_method(cls, methods):
        if not methods:
            raise ValueError(f"at least one method is needed ({list(METHODS)})")
        return methods


def open_benchmark(spec: str | None) -> Benchmark:
    """None: the embedded mini-benchmark; 'real-subset': the real NB-101 cells shipped with the
    project; else a Parquet path."""
    if spec is None:
        return Benchmark.default()
    if spec == REAL_SUBSET:
        return Benchmark.real_subset()
    if not Path(spec).exists():
        raise ConfigError(f"benchmark: file not found: {spec}")
    return Benchmark.open(spec)


def benchmark_identity(bench: Benchmark) -> str:
    """A key for the benchmark's content, so units on different data never collide."""
    meta = {k: v for k, v in bench.metadata.items() if k not in ("imported_at", "source", "build_seconds")}
    return stable_key(meta | {"rows": bench.table.num_rows, "epochs": bench.epochs})


def resolve_spaces(config: BaselinesConfig, bench: Benchmark) -> list[str]:
    """The sub-spaces to search; an explicitly requested empty one is an error."""
    sizes = {name: bench.best(name)["cells"] if _has(bench, name) else 0 for name in SUBSPACES}
    if config.spaces is None:
        return [name for name in SUBSPACES if sizes[name] > 0]
    empty = [s for s in config.spaces if sizes[s] == 0]
    if empty:
        raise ConfigError(f"spaces: {empty} have no cells in {bench.source}")
    return list(config.spaces)


def _has(bench: Benchmark, name: str) -> bool:
    try:
        bench.best(name)
        return True
    except ValueError:
        return False


def plan(config: BaselinesConfig, bench: Benchmark, spaces: list[str]) -> list[Unit]:
    """One unit per (space, method, seed); the key covers everything that decides its result."""
    identity = benchmark_identity(bench)
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
                }
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


def baseline_search(unit: Unit, fault: dict | None, spaces: dict, report_steps: list) -> dict:
    """Ray task (one CPU): run one search; its logging is a separate task (`record_search`)."""
    maybe_die(unit, fault)
    p = unit.params
    space: SpaceData = spaces[p["space"]]
    result = run_search(p["method"], space, p["seed"], p["budget"], p["validation"])
    metrics = summarize(result.trajectory, report_steps) | {
        k: float(v) for k, v in result.stats.items() if isinstance(v, int | float | bool)
    }
    return {"unit": unit, "metrics": metrics, "trajectory": result.trajectory}


def record_search(target: TrackingTarget, result: dict) -> dict:
    """Ray task (no CPU: it waits on the tracking server): log a finished search as a child run,
    so the CPU goes on to the next search meanwhile."""
    unit, p = result["unit"], result["unit"].params
    run_id = target.tracker().log_unit(
        target.parent_run_id,
        unit.key,
        unit.name,
        params=p | {"clock": "simulated seconds (benchmark training time)"},
        metrics=result["metrics"],
        tables={"trajectory.parquet": result["trajectory"]},
        tags={"space": p["space"], "method": p["method"]},
    )
    return {
        "key": unit.key,
        "run_id": run_id,
        "metrics": result["metrics"],
        "steps": change_points(result["trajectory"]),
    }


def curves_table(units: list[Unit], steps: dict[str, pa.Table]) -> pa.Table:
    """All units' regret step functions in one table: space, method, seed, run, time, step, regret."""
    parts = []
    for unit in units:
        t = steps[unit.key]
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


def report(config: BaselinesConfig, curves: pa.Table, out_dir: Path) -> tuple[pa.Table, list[Path]]:
    """Mean final regret with 95% CI per space and method, and fig. 4.2 per space (log-log)."""
    from stats import mean_ci
    from stats.figures import regret_figure, save_figure
    from stats.regret import log_grid, regret_curves
    from stats.tables import Report, to_markdown

    frame = curves.to_pandas()
    rows, files = [], []
    for space, group in frame.groupby("space", sort=False):
        last = group.sort_values("step").groupby("run_id").tail(1)
        for method in config.methods:
            runs = last[last["method"] == method]
            ci = mean_ci(runs["regret"].to_numpy())
            row = {
                "space": space,
                "method": method,
                "seeds": len(runs),
                "evaluations": int(runs["step"].median()),
                "final_regret_mean": ci.mean,
                "ci95_low": ci.ci_low,
                "ci95_high": ci.ci_high,
                "sim_time_mean_s": float(runs["time"].mean()),
            }
            rows.append(row)
        grid = log_grid(group["time"].to_numpy(), 200)
        fig = regret_figure(
            regret_curves(group, by="method", grid=grid),
            title=f"{space}: test regret vs simulated time ({config.validation} validation)",
            xlabel="simulated time (s, benchmark training time)",
        )
        files.append(save_figure(fig, out_dir / f"regret_{space}.png"))
    table = pa.Table.from_pylist(rows)
    summary = Report("final_regret", table, to_markdown(table))
    files += list(summary.write(out_dir).values())
    curves_path = out_dir / "regret_steps.parquet"
    import pyarrow.parquet as pq

    pq.write_table(curves, curves_path, compression="zstd")
    files.append(curves_path)
    return table, files
