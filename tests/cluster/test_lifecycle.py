"""cluster.lifecycle, cluster.pools and cluster.sweep on a toy trainer and a file MLflow store:
resume after a crash ends as an uninterrupted run; pools make members lazily; a failed sweep's
parent run is FAILED (KILLED on Ctrl-C), never left RUNNING."""

from __future__ import annotations

import pytest
import torch

from cluster.lifecycle import Resumable, run_resumable
from cluster.pools import Pool
from cluster.scheduler import TrackingTarget
from cluster.sweep import open_sweep
from cluster.tracking import ERROR, KIND, UNIT_KEY, Tracker
from cluster.units import Unit


class Crash(RuntimeError):
    pass


class Counter:
    """A trainer whose state is a running sum: resuming at the wrong step changes the result."""

    def __init__(self, total: int, crash_at: int | None = None):
        self.position, self.total, self.crash_at = 0, total, crash_at
        self.weights = torch.zeros(2)

    def step(self) -> dict:
        if self.position == self.crash_at:
            raise Crash(f"crashed at step {self.position}")
        self.position += 1
        self.weights = self.weights * 0.5 + self.position
        return {"loss": 1.0 / self.position}

    def state_dict(self) -> dict:
        return {"position": self.position, "weights": self.weights.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.position, self.weights = state["position"], state["weights"]


def _work(crash_at=None, every=2, local=None) -> Resumable:
    def finish(trainer, run_id):
        return {"final": float(trainer.weights[0])}, {}

    return Resumable(
        setup=lambda device: Counter(5, crash_at),
        finish=finish,
        params={"total": 5},
        checkpoint_every=every,
        local_checkpoint=local,
    )


@pytest.fixture
def target(tmp_path):
    tracker = Tracker(f"file:{tmp_path / 'mlruns'}", "lifecycle")
    parent = tracker.start_sweep("toy", "sweep-key", {})
    return TrackingTarget(tracker.tracking_uri, "lifecycle", parent)


def test_a_crashed_unit_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_one(target, tmp_path):
    clean = run_resumable(Unit("clean", "clean"), target, _work(), "cpu")
    unit = Unit("resumed", "resumed")
    with pytest.raises(Crash):
        run_resumable(unit, target, _work(crash_at=3), "cpu")  # checkpoint at step 2, dies in step 4
    again = run_resumable(unit, target, _work(), "cpu")
    assert again.metrics["final"] == clean.metrics["final"] == 8.0625  # 1, 2.5, 4.25, 6.125, 8.0625
    assert again.metrics["resumed_from_epoch"] == 2 and clean.metrics["resumed_from_epoch"] == 0
    tracker = target.tracker()
    runs = tracker.client.search_runs([tracker.experiment_id], f"tags.`{UNIT_KEY}` = 'resumed'")
    assert [r.info.status for r in runs] == ["FINISHED"]  # the crashed attempt's run was continued
    assert runs[0].info.run_id == again.run_id and runs[0].data.params["device"] == "cpu"
    history = tracker.client.get_metric_history(again.run_id, "loss")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5]  # step 3 logged once, by the resume
    assert all(m.timestamp > 1_600_000_000_000 for m in history)  # wall-clock times, not 0
    assert tracker.load_blob(again.run_id, "checkpoints/last.pt") is not None


def test_a_local_checkpoint_is_preferred_and_removed_at_the_end(target, tmp_path):
    local = tmp_path / "ck" / "unit" / "last.pt"
    unit = Unit("local", "local")
    with pytest.raises(Crash):
        run_resumable(unit, target, _work(crash_at=4, every=1, local=local), "cpu")
    assert local.exists() and oct(local.stat().st_mode & 0o777) == "0o600"
    again = run_resumable(unit, target, _work(every=1, local=local), "cpu")
    assert again.metrics["resumed_from_epoch"] == 4 and not local.exists()


def test_pool_makes_members_lazily_keeps_affinity_and_replaces():
    made, stopped = [], []

    def make(index):
        made.append(index)
        return f"member{index}-{len(made)}"

    pool = Pool(make, size=3, stop=stopped.append)
    assert pool.started == 0  # nothing made before first use
    first = pool.pick("supernet-a")
    assert all(pool.pick("supernet-a") == first for _ in range(5))  # same key, same member
    assert [pool.pick() for _ in range(4)] == [0, 1, 2, 0]  # round robin otherwise
    member = pool.get(1)
    assert pool.get(1) == member and made == [1]
    assert pool.replace(1) != member and stopped == [member]
    pool.get(0)
    pool.close()
    assert pool.started == 0 and len(stopped) == 3
    with pytest.raises(ValueError, match="at least one member"):
        Pool(make, size=0)


def _parent(tracker: Tracker):
    (run,) = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'sweep'")
    return run


def test_a_sweep_that_raises_is_failed_with_its_error(tmp_path):
    tracker = Tracker(f"file:{tmp_path / 'mlruns'}", "sweeps")
    with pytest.raises(ZeroDivisionError), open_sweep(tracker, "s", "k1", {"a": 1}):
        _ = 1 / 0
    run = _parent(tracker)
    assert run.info.status == "FAILED" and run.data.tags[ERROR] == "ZeroDivisionError: division by zero"


def test_ctrl_c_kills_the_sweep_and_a_completed_one_is_finished(tmp_path):
    tracker = Tracker(f"file:{tmp_path / 'mlruns'}", "sweeps")
    with pytest.raises(KeyboardInterrupt), open_sweep(tracker, "s", "k2", {}):
        raise KeyboardInterrupt
    assert _parent(tracker).info.status == "KILLED"

    class Outcome:
        results, ran, skipped = {}, set(), {}

    with open_sweep(tracker, "s", "k2", {}) as sweep:  # re-submitted: the same parent run reopens
        assert sweep.close(Outcome(), [], "report", tmp_path) == 0
    run = _parent(tracker)
    assert run.info.status == "FINISHED" and run.data.metrics["units"] == 0


def test_log_curve_subsamples_and_keeps_both_ends(tmp_path):
    tracker = Tracker(f"file:{tmp_path / 'mlruns'}", "curves")
    run_id = tracker.start_sweep("c", "k", {})
    steps = list(range(1, 5001))
    regret = [1.0 / s for s in steps]
    series = {"regret": regret, "sim_time": [2.0 * s for s in steps]}
    assert tracker.log_curve(run_id, steps, series, max_points=100) == 100
    history = sorted(tracker.client.get_metric_history(run_id, "regret"), key=lambda m: m.step)
    assert len(history) == 100 and history[0].step == 1 and history[-1].step == 5000
    assert history[-1].value == 1.0 / 5000 and all(m.value == 1.0 / m.step for m in history)
    times = tracker.client.get_metric_history(run_id, "sim_time")
    assert all(m.value == 2.0 * m.step for m in times)
    assert tracker.log_curve(run_id, [1, 2], {"regret": [0.5, 0.25]}) == 2  # short curves whole
