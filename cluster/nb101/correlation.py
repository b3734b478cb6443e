"""The weight-sharing correlation study (thesis table 4.3, figs. 4.3/4.4) as a unit graph.

For each space and variant, S supernets are trained (a pool of `SupernetTrainerActor`s), then
each scores N unique random cells (a pool of `ArchEvaluatorActor`s, one supernet per evaluator)
under NO-FT and BNS-FT; Spearman's rank correlation against the benchmark's mean validation
accuracy is averaged over supernets with a t-based 95% CI, failed supernets excluded and flagged.
Every supernet and every evaluation is a unit with a stable key, so a re-submitted study reuses
all finished work (a supernet's metrics, an evaluation's `PROXIES` table).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa

from cluster.nb101.actors import (
    PROXIES,
    ArchEvaluatorActor,
    SupernetTrainerActor,
    evaluator_slots,
    trainer_slots,
)
from cluster.nb101.config import WSCorrelationConfig
from cluster.pools import ActorPool
from cluster.scheduler import Node, TrackingTarget
from cluster.units import Unit, UnitResult
from core.keys import stable_key
from core.nb101.benchmark import Benchmark
from core.ws.cells import CellSampler, space_cells
from core.ws.config import SupernetConfig

UNIT_VERSION = 1


def supernet_unit(identity: str, recipe: SupernetConfig, replicate: int) -> Unit:
    params = {
        "kind": "nb101-supernet",
        "version": UNIT_VERSION,
        "benchmark": identity,
        "replicate": replicate,
    }
    params |= {"space": recipe.space, "variant": recipe.variant}
    key = stable_key(params | {"recipe": recipe.model_dump()})
    return Unit(key, f"{recipe.space}/{recipe.variant}/supernet{replicate}", params)


def evaluation_unit(supernet: Unit, cells: int, modes: list[str]) -> Unit:
    params = {
        "kind": "nb101-ws-eval",
        "version": UNIT_VERSION,
        "supernet": supernet.key,
        "cells": cells,
        "modes": ",".join(modes),
        "space": supernet.params["space"],
        "variant": supernet.params["variant"],
        "replicate": supernet.params["replicate"],
    }
    return Unit(stable_key(params), supernet.name.replace("supernet", "eval"), params)


def cell_features(cells: pa.Table, rows: list[int]) -> dict:
    """Properties the scatter plots colour by: input->output edge, conv3x3 on the first vertex."""
    sampler = CellSampler(cells, seed=0)
    specs = [sampler.spec(r) for r in rows]
    return {
        "residual": np.array([bool(s.matrix[0, -1]) for s in specs]),
        "conv3x3_first": np.array(
            [s.ops[1] == "conv3x3-bn-relu" if s.num_vertices > 2 else False for s in specs]
        ),
    }


class Study:
    """The study's units (planned without Ray), then, once opened on a sweep, its nodes and the
    actor pools that run them."""

    def __init__(
        self,
        config: WSCorrelationConfig,
        bench: Benchmark,
        spaces: list[str],
        identity: str,
        fault: dict | None = None,
        replicates: int | None = None,
    ):
        """Supernets for `replicates` replicates (default config.supernets) of every space and
        variant; the first config.supernets of them are scored on config.cells random cells."""
        self.config, self.bench, self.spaces, self.fault = config, bench, spaces, fault
        self.cells = {s: space_cells(bench, s) for s in spaces}
        self.truth = {
            s: bench.mean("validation_accuracy")[
                bench.lookup(self.cells[s]["hash"].to_numpy(zero_copy_only=False))[0]
            ]
            for s in spaces
        }
        self.target: TrackingTarget | None = None
        self.trainers = self.evaluators = None
        self._training: set[str] = set()
        self.evaluations: list[Unit] = []
        self.recipes: dict[str, SupernetConfig] = {}
        self.supernets: dict[tuple, Unit] = {}
        for space in spaces:
            for variant in config.variants:
                modes = ["NO-FT", "BNS-FT"] if variant == "uniform" else ["BNS-FT"]
                for replicate in range(max(config.supernets, replicates or 0)):
                    recipe = config.recipe(space, variant, replicate)
                    sn = supernet_unit(identity, recipe, replicate)
                    self.recipes[sn.key] = recipe
                    self.supernets[(space, variant, replicate)] = sn
                    if replicate < config.supernets:
                        self.evaluations.append(evaluation_unit(sn, config.cells, modes))

    def units(self) -> list[Unit]:
        return list(self.supernets.values()) + self.evaluations

    # ---- running -------------------------------------------------------------------------
    def open(self, target: TrackingTarget) -> None:
        """Where units log, and the pools of trainers and evaluators (Ray must be running; no
        actor starts before a unit needs it)."""
        c = self.config
        trainers = trainer_slots(c.gpus_per_trainer, c.gpus_per_evaluator, c.evaluators)
        evaluators = evaluator_slots(c.evaluators, c.gpus_per_evaluator, c.gpus_per_trainer)
        self.target = target
        self.trainers = ActorPool(SupernetTrainerActor, trainers.count, trainers.options, (target,))
        self.evaluators = ActorPool(ArchEvaluatorActor, evaluators.count, evaluators.options, (target,))

    def close(self) -> None:
        """End every actor of the study (the devices they hold are free again)."""
        for pool in (self.trainers, self.evaluators):
            if pool is not None:
                pool.close()

    def nodes(self) -> list[Node]:
        """Supernets, then evaluations after their supernet; a unit whose actor dies is relaunched."""
        nodes = [
            Node(sn, self.launch_supernet, done=self.trained, pool=self.trainers)
            for sn in self.supernets.values()
        ]
        nodes += [
            Node(
                ev,
                self.launch_evaluation,
                deps=(ev.params["supernet"],),
                tables=(PROXIES,),
                pool=self.evaluators,
            )
            for ev in self.evaluations
        ]
        return nodes

    def launch_supernet(self, unit: Unit, _deps: dict):
        recipe = self.recipes[unit.key]
        self._training.add(unit.key)
        return self.trainers.call("train", unit, recipe.model_dump(), self.cells[recipe.space], self.fault)

    def trained(self, unit: Unit, _result: UnitResult) -> None:
        """A supernet is trained; once none is left, the trainers (and their devices) go."""
        self._training.discard(unit.key)
        if not self._training:
            self.trainers.close()

    def evaluator(self, supernet_key: str):
        """The evaluator actor of a supernet: always the same one, so it loads the supernet once
        and its proxy cache serves every search of that supernet."""
        return self.evaluators.get(self.evaluators.pick(supernet_key))

    def launch_evaluation(self, unit: Unit, deps: dict[str, UnitResult]):
        supernet_key = unit.params["supernet"]
        recipe = self.recipes[supernet_key]
        cells = self.cells[recipe.space]
        rows = CellSampler(cells, seed=1000 + unit.params["replicate"]).unique(self.config.cells)
        return self.evaluators.call(
            "evaluate",
            unit,
            deps[supernet_key].run_id,
            recipe.model_dump(),
            cells,
            rows,
            self.truth[recipe.space][rows],
            cell_features(cells, rows),
            affinity=supernet_key,
        )

    # ---- results -------------------------------------------------------------------------
    def proxies(self, results: dict[str, UnitResult]) -> pa.Table:
        """Every evaluated cell: space, variant (NO-FT / BNS-FT / variant name), replicate, proxy, target."""
        parts = []
        for unit in self.evaluations:
            t = results[unit.key].table(PROXIES)
            for mode in unit.params["modes"].split(","):
                label = mode if unit.params["variant"] == "uniform" else unit.params["variant"]
                n = t.num_rows
                parts.append(
                    pa.table(
                        {
                            "space": [unit.params["space"]] * n,
                            "variant": [label] * n,
                            "replicate": np.full(n, unit.params["replicate"]),
                            "hash": t["hash"],
                            "proxy": t[mode],
                            "target": t["target"],
                            "residual": t["residual"],
                            "conv3x3_first": t["conv3x3_first"],
                        }
                    )
                )
        return pa.concat_tables(parts)


@contextmanager
def opened(plan, target: TrackingTarget) -> Iterator[list[Node]]:
    """The nodes of `plan` (a Study, or a Sweep holding one) opened on a sweep; its actors end
    with the block, however it ends."""
    plan.open(target)
    try:
        yield plan.nodes()
    finally:
        plan.close()
