"""The lifecycle of a resumable unit, written once for every trainer (think Ray Tune's Trainable).

A workload supplies a `Resumable`: how to build its trainer on a device (`setup`), and what to
measure once it is trained (`finish`). The trainer is a plain class of `core/` with `position`
and `total` (steps done and to do), `step()` (one epoch, or one block of iterations, returning
its numbers) and `state_dict()` / `load_state_dict()` (plain tensors and values). The lifecycle
owns the rest:

1. open the unit's MLflow run (an unfinished run of the same key is reopened: it holds the
   checkpoint this attempt resumes from);
2. restore the last checkpoint (a local copy first when the workload keeps one, else the run's);
3. step, log each step's numbers as step metrics (stamped with the time the step ended), and
   every `checkpoint_every` steps write the checkpoint atomically (and run the fault hook right
   after, so tests kill a worker there), while MLflow's system-metrics monitor samples CPU,
   memory and GPU into the same run;
4. call `finish`, log the trained model as an MLflow model when the workload says how
   (`Resumable.model`; registered under `register_as`), close the run with the metrics and
   tables, and return a `UnitResult`.

An actor that dies is restarted by Ray (or its unit relaunched on another pool member); the
retried call lands here again and continues from step 2, ending with the weights of an
uninterrupted run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from core import checkpoint

CHECKPOINT = "checkpoints/last.pt"


class Trainable(Protocol):
    """What the lifecycle needs of a trainer."""

    position: int  # steps done (epochs or iterations)
    total: int  # steps of a whole training

    def step(self) -> dict: ...  # advance by one step (or block): its numbers for the curves

    def state_dict(self) -> dict: ...  # plain tensors and values

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class Resumable:
    """A workload's unit as the lifecycle runs it."""

    setup: Callable[[str], Trainable]  # device -> a fresh trainer (restored afterwards if possible)
    # (trainer, run_id) -> summary metrics and tables, once the training is complete
    finish: Callable[[Trainable, str], tuple[dict, dict[str, pa.Table]]]
    params: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    step_name: str = "epoch"  # what a step is: the curves' x axis and the resume metric's name
    checkpoint_every: int | None = 1  # steps between checkpoints; None: never (short units restart)
    local_checkpoint: Path | None = None  # also keep the checkpoint here (a disk every node sees)
    checkpoint_to_mlflow: bool = True
    die_at: int | None = None  # testing hook: the step after whose checkpoint the fault may strike
    # trainer -> (torch module or tracking.CodeModel, one input batch): the final model, logged as an
    # MLflow model (Tracker.log_model)
    model: Callable[[Trainable], tuple] | None = None
    register_as: str | None = None  # registered model name (a job's --register-model), or None


def run_resumable(unit, target, work: Resumable, device: str, fault: dict | None = None, track: bool = True):
    """Run one resumable unit on `device` to its end; a `UnitResult`. With `track=False` (the other
    ranks of a data-parallel gang) nothing is logged, restored or saved: rank 0 does it."""
    from cluster.devices import placement
    from cluster.units import UnitResult

    tracker = target.tracker() if track else None
    run_id, where = "", placement()  # node and GPU ids: params of the first attempt, tags of the last
    if tracker:
        params = work.params | {"device": device} | where
        run_id = tracker.open_unit(target.parent_run_id, unit.key, unit.name, params, work.tags)
    trainer = work.setup(device)
    resumed_from = _restore(unit, trainer, work, tracker, run_id, device) if tracker else 0
    if tracker and where:  # a run reopened by a later attempt keeps its first params: tag this one's
        tracker.set_tags(run_id, {"node_id": where["node_id"], "gpu_ids": where["gpu_ids"]})
    start = time.perf_counter()
    with tracker.system_metrics(run_id) if tracker else contextlib.nullcontext():
        _train(unit, trainer, work, tracker, run_id, fault)
        metrics, tables = work.finish(trainer, run_id)
        if tracker and work.model is not None:
            _log_model(unit, trainer, work, tracker, run_id)
    metrics = metrics | {
        f"resumed_from_{work.step_name}": resumed_from,
        "wall_seconds_this_attempt": time.perf_counter() - start,
    }
    if tracker:
        tracker.close_unit(run_id, metrics, tables)
        _drop_local(work)
    return UnitResult(unit.key, run_id, metrics, tables, info={"device": device} | where)


def _train(unit, trainer: Trainable, work: Resumable, tracker, run_id: str, fault: dict | None) -> None:
    """Step to the end: each step's numbers (and when it ended) logged, a checkpoint written every
    `checkpoint_every` steps."""
    from cluster.scheduler import maybe_die
    from cluster.tracking import STEP_TIME, now_ms

    pending, saved_at = [], trainer.position
    while trainer.position < trainer.total:
        pending.append(trainer.step() | {work.step_name: trainer.position, STEP_TIME: now_ms()})
        due = work.checkpoint_every and trainer.position - saved_at >= work.checkpoint_every
        if tracker and (due or trainer.position >= trainer.total):
            tracker.log_steps(run_id, pending, work.step_name)
            pending, saved_at = [], trainer.position
            if work.checkpoint_every:
                _save(trainer, work, tracker, run_id)
                if work.die_at is None or trainer.position >= work.die_at:
                    maybe_die(unit, fault)  # testing hook: the worker dies once, after a checkpoint


def _log_model(unit, trainer: Trainable, work: Resumable, tracker, run_id: str) -> None:
    """The trained model as an MLflow model of the unit's run (registered when asked)."""
    module, example = work.model(trainer)
    tags = {"unit": unit.name, "unit_key": unit.key, "source_run": run_id} | work.tags
    uri = tracker.log_model(
        run_id, module, example, register_as=work.register_as, tags=tags, step=trainer.position
    )
    where = f", registered as {work.register_as!r}" if work.register_as else ""
    print(f"{unit.name}: model logged as {uri}{where}", flush=True)


def _restore(unit, trainer: Trainable, work: Resumable, tracker, run_id: str, device: str) -> int:
    """Load the newest checkpoint this unit left (local copy first); the step it resumes from."""
    local = work.local_checkpoint
    if local is not None and local.exists():
        state, where = checkpoint.load(local, device), str(local)
    else:
        blob = tracker.load_blob(run_id, CHECKPOINT)
        if blob is None:
            return 0
        state, where = checkpoint.from_bytes(blob, device), f"run {run_id}"
    trainer.load_state_dict(state)
    at = f"{work.step_name} {trainer.position}"
    print(f"{unit.name}: resumed from its checkpoint at {at} ({where})", flush=True)
    return trainer.position


def _save(trainer: Trainable, work: Resumable, tracker, run_id: str) -> None:
    blob = checkpoint.to_bytes(trainer.state_dict())
    if work.local_checkpoint is not None:
        checkpoint.write_private(work.local_checkpoint, blob)
    if work.checkpoint_to_mlflow:
        tracker.save_blob(run_id, CHECKPOINT, blob)


def _drop_local(work: Resumable) -> None:
    """The run holds the final checkpoint: the local copy can go (when MLflow keeps one)."""
    local = work.local_checkpoint
    if local is not None and work.checkpoint_to_mlflow:
        local.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            local.parent.rmdir()
