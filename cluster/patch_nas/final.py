"""The final stage (thesis 5.4): the best networks of the search retrained with the baselines.

The `top_k` best distinct networks of the search, the OFA reference and the timm baselines are
retrained for `final.epochs` and scored on val and test; FractNet is the retrained network with
the best *validation* AUFROC. `final.scratch` adds OFA • and FractNet • from random weights.
A network whose key is FINISHED in MLflow is read back (`Tracker.read_result`), not retrained.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from cluster.patch_nas.config import FractureNASConfig
from cluster.patch_nas.jobs import TrainingJob, baseline_job, ofa_job, supernet_id
from cluster.patch_nas.pool import GangPool, Task
from cluster.tracking import Tracker
from cluster.units import UnitResult
from search.ofa_space import OFA_REFERENCE

SPLITS = ("val", "test")
FRACTNET_ALIAS = "fractnet"  # the registered model's alias of FractNet's version


@dataclass(frozen=True)
class FinalRow:
    """A row of table 5.1: its label, what kind of network it is, its job and result."""

    network: str
    kind: Literal["baseline", "reference", "nas", "scratch"]
    job: TrainingJob
    result: UnitResult | None = None
    search_index: int | None = None


class FinalStage:
    """Plans and runs the final stage of one config over a gang pool."""

    def __init__(self, config: FractureNASConfig, data_identity: str, supernet: str, tracker: Tracker):
        self.config, self.data_identity, self.supernet, self.tracker = (
            config,
            data_identity,
            supernet,
            tracker,
        )

    def _ofa(self, genome, name: str, role: str, supernet: str | None = None, scratch=False) -> TrainingJob:
        c = self.config
        sn = supernet or self.supernet
        return ofa_job(genome, name, c, self.data_identity, sn, c.final.epochs, SPLITS, role, scratch)

    def plan(self, records: list[dict]) -> list[FinalRow]:
        """The top networks of the search, the OFA reference and the baselines."""
        from core.patches.baselines import label
        from core.patches.report import top_networks, trajectory_frame

        c = self.config
        rows = []
        for rank, r in enumerate(top_networks(trajectory_frame(records), c.final.top_k).itertuples(), 1):
            genome = [int(v) for v in r.genome.split(",")]
            job = self._ofa(genome, f"final/top{rank}", "final-nas")
            rows.append(FinalRow(f"NAS #{rank}", "nas", job, search_index=int(r.index)))
        if c.final.reference:
            rows.append(
                FinalRow(
                    "OFA",
                    "reference",
                    self._ofa(OFA_REFERENCE.genome, "final/ofa-reference", "final-reference"),
                )
            )
        for name in c.final.baselines:
            rows.append(FinalRow(label(name), "baseline", baseline_job(name, c, self.data_identity)))
        return rows

    def run(self, pool: GangPool, records: list[dict], finished: dict[str, str]) -> list[FinalRow]:
        rows = self._trained(pool, self.plan(records), finished, "final stage")
        nas = [r for r in rows if r.kind == "nas"]
        best = max(nas, key=lambda r: (r.result.metrics["aufroc_val"], -int(r.network.split("#")[1])))
        rows = [replace(r, network="FractNet") if r is best else r for r in rows]
        if self.config.final.scratch:
            rows += self._trained(pool, self._scratch(rows), finished, "final stage (from scratch)")
        return rows

    def _scratch(self, rows: list[FinalRow]) -> list[FinalRow]:
        """OFA • and FractNet •: the same networks from random weights."""
        scratch_id = supernet_id(self.config, scratch=True)
        reference = next((r for r in rows if r.kind == "reference"), None)
        fractnet = next(r for r in rows if r.network == "FractNet")
        extra = []
        for name, slug, src in (("OFA •", "ofa", reference), ("FractNet •", "fractnet", fractnet)):
            if src is not None:
                job = self._ofa(
                    src.job.model.genome, f"final/scratch-{slug}", "final-scratch", scratch_id, True
                )
                extra.append(FinalRow(name, "scratch", job))
        return extra

    def _trained(
        self, pool: GangPool, rows: list[FinalRow], finished: dict[str, str], label: str
    ) -> list[FinalRow]:
        """The rows with their results: read back when finished in MLflow, else trained (once per key)."""
        results: dict[str, UnitResult] = {}
        todo: dict[str, Task] = {}
        for row in rows:
            key = row.job.unit.key
            if key in results or key in todo:
                continue
            if key in finished:
                results[key] = self.tracker.read_result(key, finished[key])
            else:
                todo[key] = Task(row.job)  # the reference may also be one of the best: trained once
        print(
            f"{label}: {len(results) + len(todo)} trainings, {len(results)} already finished in MLflow",
            flush=True,
        )
        for task, result in pool.run_all(list(todo.values()), label):
            results[task.key] = result
        return [replace(row, result=results[row.job.unit.key]) for row in rows]


def register_final(tracker: Tracker, name: str, rows: list[FinalRow]) -> None:
    """The retrained top-k networks (their runs' logged models) as versions of the registered model
    `name`, tagged with the row (network, unit, validation AUFROC, unit key); FractNet's version
    also gets the alias `fractnet`. A row already registered keeps its version; a run without a
    model (trained before models were logged) is said and skipped."""
    for row in rows:
        if row.kind != "nas":
            continue
        run_id = row.result.run_id
        tags = {
            "network": row.network,
            "unit": row.job.unit.name,
            "unit_key": row.job.unit.key,
            "aufroc_val": row.result.metrics.get("aufroc_val"),
            "source_run": run_id,
        }
        version = tracker.register_model(run_id, name, tags)
        if version is None:
            print(
                f"{row.network}: run {run_id} logged no model (trained before models were logged): "
                "not registered"
            )
            continue
        if row.network == "FractNet":
            tracker.set_model_alias(name, FRACTNET_ALIAS, version, run_id)
        alias = f", alias {FRACTNET_ALIAS!r}" if row.network == "FractNet" else ""
        print(
            f"{row.network} ({row.job.unit.name}): registered as {name!r} version {version}{alias}",
            flush=True,
        )
