"""The weight-sharing correlation study (thesis table 4.3, figs. 4.3/4.4) as a unit graph.

For each space and variant, S supernets are trained (SupernetTrainer actors), then each scores
N unique random cells (ArchEvaluator pool) under NO-FT and BNS-FT; Spearman's rank correlation
against the benchmark's mean validation accuracy is averaged over supernets with a t-based 95%
CI, failed supernets excluded and flagged. Every supernet and every evaluation is a unit with a
stable key, so a re-submitted study reuses all finished work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import ray
from pydantic import Field, field_validator

from cluster.scheduler import Node, TrackingTarget, Unit
from core.config import Config
from core.keys import stable_key
from core.nb101.benchmark import Benchmark
from core.nb101.space import check_subspaces
from core.ws.cells import CellSampler, space_cells
from core.ws.config import VARIANTS, SupernetConfig

UNIT_VERSION = 1

# Recipes of the presets; the thesis recipe is SupernetConfig's own defaults (SPEC.md).
EMBEDDED_RECIPE = {
    "dataset": "digits",
    "epochs": 100,
    "batch_size": 64,
    "lr": 0.05,
    "bn_momentum": 0.1,
    "stem_filters": 8,
    "num_stacks": 2,
    "modules_per_stack": 1,
    "checkpoint_every": 25,
}
PRESETS = {
    "smoke": {
        "spaces": ["A2"],
        "variants": ["uniform"],
        "supernets": 2,
        "cells": 30,
        "supernet": EMBEDDED_RECIPE | {"epochs": 3, "checkpoint_every": 1},
    },
    "default": {"variants": ["uniform"], "supernets": 3, "cells": 300, "supernet": EMBEDDED_RECIPE},
    "thesis": {"variants": list(VARIANTS), "supernets": 5, "cells": 1000, "supernet": {"dataset": "cifar10"}},
}


class WSCorrelationConfig(Config):
    experiment: str = "nb101-ws-correlation"
    sweep_name: str = "ws-correlation"
    benchmark: str | None = Field(
        None, description="None: embedded mini-benchmark; 'real-subset'; or a Parquet path"
    )
    spaces: list[str] | None = None
    variants: list[Literal["uniform", "SINGLE-K", "PRO-RATA", "AVG-3", "S-K+P-R"]] = ["uniform"]
    supernets: int = Field(3, ge=1)
    cells: int = Field(300, ge=2)
    supernet: dict = Field(default_factory=dict, description="SupernetConfig overrides")
    gpus_per_trainer: float = Field(1.0, ge=0)
    gpus_per_evaluator: float = Field(0.5, ge=0)
    evaluators: int = Field(2, ge=1)
    tracking_uri: str | None = None
    ray_address: str | None = None
    output_dir: str = "outputs/ws_correlation"

    @field_validator("spaces")
    @classmethod
    def _spaces(cls, spaces):
        return check_subspaces(spaces)

    def recipe(self, space: str, variant: str, replicate: int) -> SupernetConfig:
        """The full supernet config of one replicate (validated: a bad key fails here)."""
        return SupernetConfig.model_validate(
            self.supernet | {"space": space, "variant": variant, "seed": replicate}
        )


def check_recipes(config: WSCorrelationConfig) -> None:
    """Every supernet recipe of the study validates, before anything starts."""
    from pydantic import ValidationError

    from core.config import ConfigError

    for space in config.spaces or ["FULL"]:
        for variant in config.variants:
            try:
                config.recipe(space, variant, 0)
            except ValidationError as err:
                lines = [
                    f"  supernet.{'.'.join(map(str, e['loc'])) or '<recipe>'}: {e['msg']}"
                    for e in err.errors()
                ]
                raise ConfigError("invalid supernet recipe:\n" + "\n".join(lines)) from None
            except ValueError as err:
                raise ConfigError(f"supernet: {err}") from None


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
    """Builds the unit graph of the study and its launchers (Ray actors)."""

    def __init__(
        self,
        config: WSCorrelationConfig,
        bench: Benchmark,
        spaces: list[str],
        target: TrackingTarget,
        identity: str,
        fault: dict | None = None,
        replicates: int | None = None,
    ):
        """Supernets for `replicates` replicates (default config.supernets) of every space and
        variant; the first config.supernets of them are scored on config.cells random cells."""
        self.config, self.bench, self.spaces, self.target, self.fault = config, bench, spaces, target, fault
        self.identity = identity
        self.cells = {s: space_cells(bench, s) for s in spaces}
        self.truth = {
            s: bench.mean("validation_accuracy")[
                bench.lookup(self.cells[s]["hash"].to_numpy(zero_copy_only=False))[0]
            ]
            for s in spaces
        }
        self._evaluators = None
        self._trainers: dict = {}
        self.nodes: list[Node] = []
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
                    self.nodes.append(
                        Node(sn, self.launch_supernet, reuse=self.reuse_supernet, done=self.release_trainer)
                    )
                    if replicate < config.supernets:
                        ev = evaluation_unit(sn, config.cells, modes)
                        self.nodes.append(
                            Node(ev, self.launch_evaluation, deps=(sn.key,), reuse=self.reuse_evaluation)
                        )
                        self.evaluations.append(ev)

    # ---- launchers ----------------------------------------------------------------------
    def launch_supernet(self, unit: Unit, _deps: dict):
        from cluster.ws_actors import SupernetTrainerActor, resources

        recipe = self.recipes[unit.key]
        actor = SupernetTrainerActor.options(**resources(self.config.gpus_per_trainer)).remote(self.target)
        self._trainers[unit.key] = actor  # a dropped handle lets Ray end the actor mid-training
        return actor.train.remote(unit, recipe.model_dump(), self.cells[recipe.space], self.fault)

    def release_trainer(self, unit: Unit, _result) -> None:
        """The supernet is trained: its actor (and the device it holds) can go."""
        self._trainers.pop(unit.key, None)

    def evaluator(self, supernet_key: str):
        """The evaluator actor of a supernet: always the same one, so it loads the supernet once
        and its proxy cache serves every search of that supernet."""
        from cluster.ws_actors import ArchEvaluatorActor, evaluator_pool_size, resources

        if self._evaluators is None:
            opts = resources(self.config.gpus_per_evaluator)
            size = evaluator_pool_size(
                self.config.evaluators, self.config.gpus_per_evaluator, self.config.gpus_per_trainer
            )
            self._evaluators = [ArchEvaluatorActor.options(**opts).remote(self.target) for _ in range(size)]
        return self._evaluators[int(supernet_key[:8], 16) % len(self._evaluators)]

    def reuse_supernet(self, unit: Unit, run_id: str) -> dict:
        run = self.target.tracker().client.get_run(run_id)
        return {"key": unit.key, "run_id": run_id, "metrics": dict(run.data.metrics)}

    def launch_evaluation(self, unit: Unit, deps: dict):
        supernet = deps[unit.params["supernet"]]
        recipe = self.recipes[unit.params["supernet"]]
        cells = self.cells[recipe.space]
        rows = CellSampler(cells, seed=1000 + unit.params["replicate"]).unique(self.config.cells)
        modes = unit.params["modes"].split(",")
        scores = self.evaluator(unit.params["supernet"]).score.remote(
            supernet["run_id"], recipe.model_dump(), cells, rows, modes
        )
        return _log_evaluation.remote(
            unit,
            self.target,
            scores,
            self._targets(recipe.space, rows),
            cell_features(cells, rows),
            supernet["run_id"],
        )

    def _targets(self, space: str, rows: list[int]) -> np.ndarray:
        return self.truth[space][rows]

    def reuse_evaluation(self, unit: Unit, run_id: str) -> dict:
        return {
            "key": unit.key,
            "run_id": run_id,
            "proxies": self.target.tracker().load_table(run_id, "proxy.parquet"),
        }

    # ---- results -------------------------------------------------------------------------
    def proxies(self, results: dict) -> pa.Table:
        """Every evaluated cell: space, variant (NO-FT / BNS-FT / variant name), replicate, proxy, target."""
        parts = []
        for unit in self.evaluations:
            t = results[unit.key]["proxies"]
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


def _spearman(proxy: np.ndarray, target: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(proxy) == 0:
        return float("nan")
    return float(spearmanr(proxy, target).statistic)


@ray.remote(num_cpus=0)
def _log_evaluation(
    unit: Unit,
    target: TrackingTarget,
    scores: pa.Table,
    truth: np.ndarray,
    features: dict,
    supernet_run_id: str,
) -> dict:
    """Joins proxies with the benchmark's accuracies and logs the evaluation unit's child run."""
    table = scores.append_column("target", pa.array(truth))
    for name, values in features.items():
        table = table.append_column(name, pa.array(values))
    modes = unit.params["modes"].split(",")
    metrics = {f"spearman_{m.replace('-', '_')}": _spearman(table[m].to_numpy(), truth) for m in modes}
    metrics |= {f"mean_proxy_{m.replace('-', '_')}": float(np.mean(table[m].to_numpy())) for m in modes}
    metrics["seconds"] = float(scores.schema.metadata[b"seconds"])
    metrics["cells_per_s"] = len(truth) * len(modes) / max(metrics["seconds"], 1e-9)
    run_id = target.tracker().log_unit(
        target.parent_run_id,
        unit.key,
        unit.name,
        params=unit.params | {"supernet_run": supernet_run_id},
        metrics={k: v for k, v in metrics.items() if np.isfinite(v)},
        tables={"proxy.parquet": table},
        tags={"role": "evaluation"},
    )
    return {"key": unit.key, "run_id": run_id, "proxies": table, "metrics": metrics}


def report(study: Study, proxies: pa.Table, out_dir: Path) -> tuple[str, list[Path]]:
    """Table 4.3 (mean Spearman and 95% CI over supernets, exclusions flagged) and the scatter plots."""
    from stats.figures import proxy_scatter_figure, save_figure
    from stats.tables import correlation_report

    out_dir.mkdir(parents=True, exist_ok=True)
    rep = correlation_report(proxies.select(["space", "variant", "replicate", "proxy", "target"]))
    files = list(rep.write(out_dir).values())
    frame = proxies.to_pandas()
    for space in study.spaces:
        mode = "BNS-FT" if "BNS-FT" in set(frame["variant"]) else frame["variant"].iloc[0]
        rows = frame[(frame["space"] == space) & (frame["variant"] == mode) & (frame["replicate"] == 0)]
        if rows.empty:
            continue
        for feature, label in (
            ("residual", "input->output edge"),
            ("conv3x3_first", "conv3x3 on first vertex"),
        ):
            fig = proxy_scatter_figure(
                rows["target"].to_numpy(),
                rows["proxy"].to_numpy(),
                highlight=rows[feature].to_numpy(bool),
                highlight_label=label,
                title=f"{space}, {mode}, supernet 0",
            )
            files.append(save_figure(fig, out_dir / f"scatter_{space}_{feature}.png"))
    pq_path = out_dir / "proxies.parquet"
    import pyarrow.parquet as pq

    pq.write_table(proxies, pq_path, compression="zstd")
    files.append(pq_path)
    return rep.markdown, files
