"""A whole fracture-NAS run for one config: the search, the final stage and the report, inside the
sweep's parent run (cluster.sweep.open_sweep: an error leaves it FAILED with the error).

The parent run's key is the search settings plus everything a candidate's score depends on, so
re-submitting the same command reopens it, replays the search checkpoint and carries on; the
final stage is not part of the key (changing it reruns only the final stage).
"""

from __future__ import annotations

from cluster.patch_nas import estimate
from cluster.patch_nas.config import PRESETS, FractureNASConfig
from cluster.patch_nas.data import PreparedData
from cluster.patch_nas.driver import CHECKPOINT_NOTE, CandidateSearch, checkpoint_saver, load_checkpoint
from cluster.patch_nas.final import FinalStage, register_final
from cluster.patch_nas.jobs import UNIT_VERSION, TrainingJob, candidate_identity, ofa_job, supernet_id
from cluster.patch_nas.pool import GangPool
from cluster.patch_nas.report import build_report
from cluster.scheduler import Outcome, fault_hook
from cluster.sweep import SweepRun
from cluster.tracking import Tracker
from core.config import flatten
from core.keys import stable_key
from search.es import Proposal
from search.ofa_space import OFA_REFERENCE


def sweep_key(config: FractureNASConfig, data_identity: str, supernet: str) -> str:
    """Identity of the search: its settings, parallelism and everything a candidate's score depends on."""
    return stable_key(
        {
            "kind": "fracture-nas-search",
            "version": UNIT_VERSION,
            "search": config.search.model_dump(exclude={"parallelism"}) | {"parallelism": config.parallelism},
            "candidate": candidate_identity(config, data_identity, supernet),
        }
    )


class FractureNAS:
    """The whole job for one config: search, final stage, report."""

    def __init__(self, config: FractureNASConfig, prepared: PreparedData, tracker: Tracker):
        self.config, self.prepared, self.tracker = config, prepared, tracker
        self.data_identity = prepared.data.identity
        self.supernet = supernet_id(config)
        self.key = sweep_key(config, self.data_identity, self.supernet)

    def sweep_params(self) -> dict:
        return flatten(self.config.model_dump()) | {"parallelism": self.config.parallelism}

    def sweep_tags(self) -> dict:
        c = self.config
        return {
            "data": self.prepared.note[:5000],
            "embedded": str(self.prepared.embedded).lower(),
            "supernet": self.supernet,
            "preset": c.preset,
            "recipe": PRESETS.note(c.preset),
            "checkpoint_note": CHECKPOINT_NOTE,
        }

    def search_job(self, proposal: Proposal) -> TrainingJob:
        c = self.config
        name = f"candidate-{proposal.index:03d}"
        return ofa_job(
            proposal.candidate,
            name,
            c,
            self.data_identity,
            self.supernet,
            c.recipe.epochs,
            ("val",),
            "search",
        )

    def dry_run(self) -> str:
        c = self.config
        finished = self.tracker.finished_units() if self.tracker else {}  # None: no store yet
        parent = self.tracker.find_sweep(self.key) if self.tracker else None
        told = load_checkpoint(self.tracker, parent, c)[0].told if parent else 0
        start = OFA_REFERENCE.name if c.search.start == "ofa-reference" else "custom genome"
        progress = (
            f"parent run {parent}, {told}/{c.search.budget} evaluations told" if parent else "not started yet"
        )
        lines = [
            f"search: (1+1)-ES {c.search.mutation}, budget {c.search.budget}, "
            f"{c.parallelism} candidates in flight, start {start}",
            f"workers: {c.clusters} clusters x {c.workers_per_cluster} workers x {c.cpus_per_worker} CPU(s), "
            f"device {c.device}",
            f"sweep key {self.key}: {progress}",
            f"finished units on the tracking server: {len(finished)} (reused when a key comes up)",
        ]
        if c.final.enabled:
            lines.append(
                f"final stage: top {c.final.top_k} + "
                + ("OFA reference + " if c.final.reference else "")
                + f"{len(c.final.baselines)} baselines, {c.final.epochs} epochs"
                + (", plus the from-scratch rows" if c.final.scratch else "")
            )
        return "\n".join(lines + estimate.describe(c, self.train_patches(), c.cluster_gpus))

    def train_patches(self) -> int:
        """Training patches a candidate epoch goes through: the data's, or the thesis' own count
        when the thesis preset runs on the embedded stand-in (its cost is the thesis' cost)."""
        if self.config.preset == "thesis" and self.prepared.embedded:
            return estimate.THESIS_TRAIN_PATCHES
        return len(self.prepared.data.split("train").train_index)

    def run(self, sweep: SweepRun) -> int:
        """Search, final stage and report in the open sweep; closes it (exit status 0)."""
        c, parent = self.config, sweep.run_id
        es, records = load_checkpoint(self.tracker, parent, c)
        if es.told:
            print(f"resuming the search from run {parent}: {es.told}/{es.budget} evaluations already told")
        fault = fault_hook()
        pool = GangPool(c, self.prepared.data, sweep.target, fault)
        finished = self.tracker.finished_units()
        try:
            search = CandidateSearch(
                es,
                records,
                pool,
                self.search_job,
                self.tracker,
                finished,
                checkpoint_saver(self.tracker, parent),
                fault,
                c.parallelism,
                c.search.tell_order,
            )
            search.run()
            final = []
            if c.final.enabled:
                final = FinalStage(c, self.data_identity, self.supernet, self.tracker).run(
                    pool, records, finished
                )
        finally:
            pool.close()
        if c.register_model and final:
            register_final(self.tracker, c.register_model, final)
        report = build_report(c, records, es.told, final, self.prepared.note)
        self.tracker.log_metrics(parent, report.metrics | {"cluster_failures": pool.failures})
        results = search.results | {row.job.unit.key: row.result for row in final}
        outcome = Outcome(
            results,
            {k for k, r in results.items() if not r.reused},
            {k: r.run_id for k, r in results.items() if r.reused},
        )
        printed = f"{report.markdown}\n\n{report.headline}" if report.markdown else report.headline
        return sweep.close(outcome, report.files, printed, c.output_dir, noun="trainings")
