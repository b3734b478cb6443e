"""One lifecycle for a sweep's parent run, used by every job.

    with open_sweep(tracker, "nb101-sweep", key, params) as sweep:
        outcome = run_graph(nodes, tracker)
        sweep.close(outcome, files, markdown, output_dir)

The parent run is opened (a re-submitted sweep with the same key reopens its run), named after
the job, its preset and spaces and a short key (`sweep_run_name`), with the code's provenance,
the resolved config (`config.yaml`) and the data sets it reads as run inputs; whatever ends the
block early marks it: an exception FAILED, Ctrl-C (KeyboardInterrupt) KILLED, with the error as
the tag `sweeps.error`; the exception then goes on. `close` logs the counts, the report's files
(figures as images) and its Markdown as the run's description, removes duplicate unit runs an
interrupted attempt left, and prints where everything is. A parent run is never left RUNNING by a
job that has stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from cluster.scheduler import TrackingTarget
from cluster.tracking import DatasetRef, Tracker, sweep_run_name


@dataclass
class SweepRun:
    """An open sweep: its tracker, parent run, and where its units log."""

    tracker: Tracker
    run_id: str
    start: float = field(default_factory=time.perf_counter)
    closed: bool = False

    @property
    def target(self) -> TrackingTarget:
        return TrackingTarget(self.tracker.tracking_uri, self.tracker.experiment, self.run_id)

    def close(self, outcome, files: list, markdown: str, output_dir, noun: str = "units") -> int:
        """Log counts and files on the parent run, mark it FINISHED, print the report; exit status 0."""
        tracker = self.tracker
        units = len(outcome.ran) + len(outcome.skipped)
        kept = {key: result.run_id for key, result in outcome.results.items() if result.run_id}
        duplicates = tracker.prune_duplicates(self.run_id, kept)
        if duplicates:
            print(f"removed {duplicates} duplicate unit run(s) left by an interrupted attempt")
        metrics = {
            "units": units,
            "units_run": len(outcome.ran),
            "units_skipped": len(outcome.skipped),
            "wall_seconds": time.perf_counter() - self.start,
            "duplicate_runs_removed": duplicates,
        }
        tracker.finish_sweep(self.run_id, metrics, files, description=markdown)
        self.closed = True
        print(markdown)
        print(
            f"{units} {noun} ({len(outcome.ran)} run, {len(outcome.skipped)} reused) "
            f"in {metrics['wall_seconds']:.0f} s; results in {output_dir}/ and MLflow run {self.run_id} "
            f"at {tracker.tracking_uri} (experiment {tracker.experiment!r})"
        )
        return 0


@contextmanager
def open_sweep(
    tracker: Tracker,
    name: str,
    key: str,
    params: dict,
    tags: dict | None = None,
    datasets: tuple[DatasetRef, ...] = (),
) -> Iterator[SweepRun]:
    """The sweep's parent run for the duration of the block (see the module docstring)."""
    run_name = sweep_run_name(name, params, key)
    sweep = SweepRun(tracker, tracker.start_sweep(run_name, key, params, tags, datasets))
    try:
        yield sweep
    except KeyboardInterrupt:
        tracker.set_status(sweep.run_id, "KILLED", "interrupted (KeyboardInterrupt)")
        raise
    except BaseException as err:
        tracker.set_status(sweep.run_id, "FAILED", f"{type(err).__name__}: {err}"[:5000])
        raise
    if not sweep.closed:  # the block ended without a report: the sweep did not complete
        tracker.set_status(sweep.run_id, "FAILED", "the job ended without closing its sweep")
