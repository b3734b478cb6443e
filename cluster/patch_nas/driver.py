"""The search of a fracture-NAS run: the ES proposes, the gang pool trains, `search.driver` tells.

`CandidateSearch` feeds the one ask/tell driver (search.driver.Driver) through a submit/wait pair
over the gang pool: every proposal becomes a training job whose unit key hashes the canonical
genome with everything its score depends on, so a key already FINISHED in MLflow is read back
(`Tracker.read_result`) and a network proposed twice is trained once; both are still told, and
the trajectory marks them `cached`. Results are told in ask order by default, so candidate j is
asked right after tell j - P and a run does not depend on timing. After every tell the
optimiser state (the ES's JSON event log, see search.es) and the per-evaluation records are
saved in the parent run (`es/checkpoint.json`), so a killed driver, resubmitted, continues the
same search; `driver/tell-<n>` is the fault hook's name for the driver itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cluster.patch_nas.config import FractureNASConfig
from cluster.patch_nas.pool import Task
from cluster.scheduler import maybe_die
from cluster.tracking import Tracker
from cluster.units import Unit, UnitResult
from core.progress import Progress
from search.driver import Driver, Told
from search.es import CheckpointError, OnePlusOneES, Proposal
from search.ofa_space import describe

CHECKPOINT = "es/checkpoint.json"
CHECKPOINT_NOTE = (
    "es/checkpoint.json is plain JSON (optimiser settings, the ordered ask/tell log, per-evaluation "
    "records); it is restored by replaying the log into a fresh nevergrad optimiser, never unpickled"
)


@dataclass(frozen=True)
class Evaluated:
    """A candidate's result as told: `cached` when it was not trained for this proposal."""

    result: UnitResult
    cached: bool

    @property
    def score(self) -> float:
        return float(self.result.metrics["aufroc_val"])


class CandidateSearch:
    """The ES over the gang pool, with its records and checkpoint (see the module docstring)."""

    def __init__(
        self,
        es: OnePlusOneES,
        records: list[dict],
        pool,  # GangPool, or anything with submit(Task) and wait() -> [(Task, UnitResult)]
        make_job: Callable[[Proposal], object],  # proposal -> TrainingJob
        tracker: Tracker | None,
        finished: dict[str, str],  # unit key -> run id of units already FINISHED in MLflow
        save: Callable[[OnePlusOneES, list[dict]], None],
        fault: dict | None,
        parallelism: int,
        tell_order: str = "ask",
    ):
        self.es, self.records, self.pool, self.make_job = es, records, pool, make_job
        self.tracker, self.finished, self.save, self.fault = tracker, finished, save, fault
        self.parallelism, self.tell_order = parallelism, tell_order
        self.results: dict[str, UnitResult] = {}  # key -> result (this run or read back from MLflow)
        self._waiting: dict[str, list[int]] = {}  # key in training -> proposal indices waiting for it
        self._ready: list[tuple[int, Evaluated]] = []  # results not yet handed to the driver
        self._progress: Progress | None = None

    def run(self) -> None:
        es = self.es
        if es.finished:
            return
        self._progress = Progress(es.budget - es.told, "search", unit="evaluations", every=30.0)
        driver = Driver(
            es,
            es.budget,
            self.parallelism,
            tell_order=self.tell_order,
            score=lambda evaluated: evaluated.score,
            after_tell=self._told,
        )
        driver.start(submit=self.submit, wait=self.wait)  # in flight before an interruption: again
        self.save(es, self.records)
        driver.run()

    # ---- the driver's submit / wait ------------------------------------------------------
    def submit(self, proposals: list[Proposal]) -> None:
        for proposal in proposals:
            self._launch(proposal)

    def wait(self) -> list[tuple[int, Evaluated]]:
        if not self._ready:
            for task, result in self.pool.wait():
                self._complete(task.key, result)
        out, self._ready = self._ready, []
        return out

    def _launch(self, proposal: Proposal) -> None:
        job = self.make_job(proposal)
        key = job.unit.key
        self._record(proposal.index).update(
            index=proposal.index,
            key=key,
            genome=list(proposal.candidate),
            arch=describe(proposal.candidate),
            mutation_probability=proposal.info["mutation_probability"],
        )
        if key not in self.results and key in self.finished:
            self.results[key] = self.tracker.read_result(key, self.finished[key])
        if key in self.results:
            self._ready.append((proposal.index, Evaluated(self.results[key], cached=True)))
        elif key in self._waiting:
            self._waiting[key].append(proposal.index)
        else:
            self._waiting[key] = [proposal.index]
            self.pool.submit(Task(job))

    def _complete(self, key: str, result: UnitResult) -> None:
        self.results[key] = result
        for n, index in enumerate(self._waiting.pop(key)):
            self._ready.append((index, Evaluated(result, cached=n > 0)))

    # ---- after each tell -----------------------------------------------------------------
    def _record(self, index: int) -> dict:
        while len(self.records) <= index:
            self.records.append({})
        return self.records[index]

    def _told(self, told: Told) -> None:
        """Record the evaluation, say it, checkpoint the search (with the asks that followed)."""
        index, evaluated = told.proposal.index, told.outcome
        rec = self._record(index)
        rec.update(evaluation_record(evaluated, told.score))
        best = self.es.best()
        how = f"cluster {rec['cluster']}, {rec['seconds']:.0f} s" if not evaluated.cached else "cached"
        if rec["failed_on"]:
            how += f", retried after cluster(s) {rec['failed_on']} died"
        print(
            f"eval {index:3d}/{self.es.budget}: AUFROC {told.score:.4f} (best {best[1]:.4f} at "
            f"{best[0].index}) {rec['params'] / 1e6:.2f}M params  {rec['arch']}  [{how}]",
            flush=True,
        )
        self.save(self.es, self.records)
        self._progress.update()
        maybe_die(Unit("", f"driver/tell-{self.es.told}"), self.fault)  # testing hook


def evaluation_record(evaluated: Evaluated, score: float) -> dict:
    """What the trajectory keeps of a told evaluation (time and attempts only when trained for it)."""
    m, info, trained = evaluated.result.metrics, evaluated.result.info, not evaluated.cached
    return {
        "aufroc_val": score,
        "params": m.get("params"),
        "macs": m.get("macs"),
        "macs_reference": m.get("macs_reference"),
        "seconds": m.get("seconds") if trained else 0.0,
        "worker_seconds": m.get("worker_seconds") if trained else 0.0,
        "cached": not trained,
        "cluster": info.get("cluster") if trained else None,
        "attempts": info.get("attempts", 0) if trained else 0,
        "failed_on": list(info.get("failed_on", [])) if trained else [],
        "run_id": evaluated.result.run_id,
    }


# ---- the checkpoint ----------------------------------------------------------------------
def load_checkpoint(
    tracker: Tracker, parent: str, config: FractureNASConfig
) -> tuple[OnePlusOneES, list[dict]]:
    """The search saved in the parent run, or a new one started from the config."""
    blob = tracker.load_blob(parent, CHECKPOINT)
    if blob is None:
        return OnePlusOneES.from_config(config.search, config.parallelism), []
    try:
        state = json.loads(blob)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"run {parent}: {CHECKPOINT} is not JSON ({err})") from None
    es = OnePlusOneES.from_state(state.get("es"))
    expected = (config.search.budget, config.parallelism, config.search.seed, config.search.mutation)
    found = (es.budget, es.num_workers, es.seed, es.mutation)
    if found != expected or es.start != config.search.start_genome():
        raise CheckpointError(
            f"run {parent}: the checkpoint's search settings {found} differ from the config's {expected}"
        )
    records = state.get("records", [])
    if not isinstance(records, list):
        raise CheckpointError(f"run {parent}: checkpoint records must be a list")
    return es, records


def checkpoint_saver(tracker: Tracker, parent: str) -> Callable[[OnePlusOneES, list[dict]], None]:
    """save(es, records): the search's state as JSON in the parent run."""

    def save(es: OnePlusOneES, records: list[dict]) -> None:
        blob = json.dumps({"es": es.state(), "records": records}, default=_json_default)
        tracker.save_blob(parent, CHECKPOINT, blob.encode())

    return save


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
