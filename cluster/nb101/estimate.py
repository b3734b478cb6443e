"""What a chapter-4 sweep costs before it runs: the time its searches simulate on its clock, and
the device work it asks of the cluster (supernet trainings, proxy evaluations) by kind, with the
wall time on a given number of GPUs. What `--dry-run` prints.

Both come from the clock (cluster/nb101/clock.py): a calibrated clock's cost table times every
cell on one device, so a supernet's training or a proxy evaluation there is also an estimate of
the real work on that device. Estimates, not measures: a WS search's proxies are counted as if
none were cached, the wall time assumes work packs perfectly onto the GPUs (but never below the
longest chain: a supernet, then its evaluations and searches on one evaluator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOUR = 3600.0


@dataclass(frozen=True)
class Work:
    """Device seconds of one kind of unit: how many, and their total (to run / all)."""

    kind: str
    units: int
    seconds: float
    gpus: float  # the GPU share each holds while it runs


def duration(seconds: float) -> str:
    """12,345.6 h, 12.3 min or 45 s."""
    if seconds >= HOUR:
        return f"{seconds / HOUR:,.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _mean_training(space) -> float:
    return float(np.nanmean(space.training_time))


def simulated(sweep) -> dict[str, float]:
    """Seconds the searches of each method charge on the clock, summed over their runs."""
    out: dict[str, float] = {}
    for unit in sweep.baseline_units:
        space = sweep.space_data[unit.params["space"]]
        label = f"{unit.params['method']}_bs"
        out[label] = out.get(label, 0.0) + _mean_training(space) * min(unit.params["budget"], len(space))
    for unit in sweep.ws_units:
        space = sweep.space_data[unit.params["space"]]
        recipe = sweep.study.recipes[unit.params["supernet"]]
        visited = min(unit.params["ws_budget"], len(space))
        seconds = sweep.clock.supernet(space, recipe) + unit.params["ws_budget"] * float(
            np.mean(sweep.clock.proxy(space))
        )
        seconds += visited * _mean_training(space)
        label = f"{unit.params['method']}_ws"
        out[label] = out.get(label, 0.0) + seconds
    return out


def device_work(sweep, finished: dict) -> tuple[list[Work], float]:
    """Device seconds by kind of the units still to run, and the longest chain (seconds)."""
    config, clock = sweep.config, sweep.clock
    proxy = {s: float(np.mean(clock.proxy(d))) for s, d in sweep.space_data.items()}
    supernet_s, chain = {}, {}
    for key, recipe in sweep.study.recipes.items():
        space = sweep.space_data[recipe.space]
        supernet_s[key] = clock.supernet(space, recipe)
        chain[key] = supernet_s[key]
    kinds = {"supernet training": [0, 0.0, config.gpus_per_trainer]}
    kinds["correlation evaluations"] = [0, 0.0, config.gpus_per_evaluator]
    kinds["WS proxy evaluations"] = [0, 0.0, config.gpus_per_evaluator]
    for key in supernet_s:
        if key not in finished:
            kinds["supernet training"][0] += 1
            kinds["supernet training"][1] += supernet_s[key]
    for unit in sweep.study.evaluations:
        modes = len(unit.params["modes"].split(","))
        seconds = proxy[unit.params["space"]] * unit.params["cells"] * modes
        chain[unit.params["supernet"]] += seconds
        if unit.key not in finished:
            kinds["correlation evaluations"][0] += 1
            kinds["correlation evaluations"][1] += seconds
    for unit in sweep.ws_units:
        seconds = proxy[unit.params["space"]] * unit.params["ws_budget"]
        chain[unit.params["supernet"]] += seconds
        if unit.key not in finished:
            kinds["WS proxy evaluations"][0] += 1
            kinds["WS proxy evaluations"][1] += seconds
    work = [Work(kind, n, s, g) for kind, (n, s, g) in kinds.items()]
    return work, max(chain.values(), default=0.0)


def wall_time(work: list[Work], chain: float, gpus: int) -> float:
    """Seconds on `gpus` GPUs: the GPU-seconds spread evenly, never below the longest chain."""
    return max(sum(w.seconds * w.gpus for w in work) / gpus, chain)


def describe(sweep, finished: dict) -> list[str]:
    """The dry run's cost lines: clock, simulated time by method, device work by kind, wall time."""
    clock = sweep.clock
    lines = []
    if clock.name == "calibrated" and clock.table is None:
        from cluster.nb101.costs import build_command
        from core.ws.config import timing_recipe

        recipe = timing_recipe(sweep.config.supernet)
        return [
            f"clock: calibrated, but no cost table times {recipe.describe()} (recipe {recipe.key}) yet: "
            f"build it with `{build_command(sweep.config.preset, sweep.config.benchmark)}` "
            "(--sample N for a fitted one); the simulated cost needs it"
        ]
    lines.append(f"clock: {clock.describe()}")
    sim = simulated(sweep)
    total = sum(sim.values())
    lines.append(
        f"simulated cost on this clock: {total / HOUR:,.1f} h of device time in all searches ("
        + ", ".join(f"{m} {s / HOUR:,.1f} h" for m, s in sim.items())
        + ")"
    )
    work, chain = device_work(sweep, finished)
    if clock.name == "calibrated":
        where = clock.table.device
        unit = "GPU-hours" if where.startswith("cuda") else "device-hours"
    else:
        where, unit = "the modelled supernet_seconds and proxy_seconds", "hours"
    lines.append(f"device work still to run ({unit}, from {where}):")
    for w in work:
        lines.append(f"  {w.kind:26s} {w.units:6d} units {w.seconds / HOUR:12,.2f} h ({w.gpus:g} GPU each)")
    baselines = sum(u.key not in finished for u in sweep.baseline_units)
    lines.append(f"  {'baseline searches':26s} {baselines:6d} units on CPUs (benchmark look-ups)")
    if clock.name == "calibrated" and not where.startswith("cuda"):
        lines.append(
            "  (hours on that CPU: GPU-hours need a GPU's table, `python jobs/nb101_costs.py` run on "
            "the cluster; the simulated comparison is fair on any one device)"
        )
    gpus = sweep.config.cluster_gpus
    if gpus:
        lines.append(
            f"wall time on {gpus} GPU(s): about {duration(wall_time(work, chain, gpus))} "
            f"(the longest chain, a supernet then its evaluations: {duration(chain)})"
        )
    else:
        lines.append("wall time: add --cluster-gpus N for an estimate on N GPUs")
    return lines
