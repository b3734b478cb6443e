"""MLflow conventions: stable keys, nested unit runs, finished-unit lookup, exactly-once."""

from __future__ import annotations

import pyarrow as pa
import pytest

from cluster.tracking import KIND, PARENT, UNIT_KEY, Tracker
from core.keys import stable_key


@pytest.fixture
def tracker(tmp_path):
    return Tracker(f"file:{tmp_path / 'mlruns'}", "test-exp")


def test_stable_key_depends_on_content_not_order():
    a = stable_key({"space": "A2", "seed": 3, "budget": 100})
    assert a == stable_key({"budget": 100, "seed": 3, "space": "A2"})
    assert a != stable_key({"space": "A2", "seed": 4, "budget": 100})
    assert len(a) == 20


def test_units_are_nested_children_and_found_as_finished(tracker):
    parent = tracker.start_sweep("sweep", "k1", {"seeds": 2})
    table = pa.table({"step": [1, 2], "regret": [0.5, 0.25]})
    run_id = tracker.log_unit(
        parent, "u1", "A2/RS/seed0", {"seed": 0}, {"final_regret": 0.25}, tables={"trajectory.parquet": table}
    )
    run = tracker.client.get_run(run_id)
    assert (
        run.data.tags[PARENT] == parent and run.data.tags[UNIT_KEY] == "u1" and run.data.tags[KIND] == "unit"
    )
    assert run.data.metrics["final_regret"] == 0.25 and run.data.params["seed"] == "0"
    assert run.info.status == "FINISHED"
    assert tracker.finished_units() == {"u1": run_id}
    assert tracker.load_table(run_id, "trajectory.parquet").equals(table)
    # re-submitting the sweep reuses its parent run
    assert tracker.start_sweep("sweep", "k1", {"seeds": 2}) == parent


def test_an_interrupted_attempt_is_replaced_not_counted(tracker):
    parent = tracker.start_sweep("sweep", "k2", {})
    half = tracker.client.create_run(
        tracker.experiment_id, tags={PARENT: parent, UNIT_KEY: "u9", KIND: "unit"}
    )
    assert tracker.finished_units() == {}  # RUNNING is not finished
    run_id = tracker.log_unit(parent, "u9", "retry", {}, {"final_regret": 0.1})
    live = tracker.client.search_runs([tracker.experiment_id], f"tags.`{UNIT_KEY}` = 'u9'")
    assert [r.info.run_id for r in live] == [run_id]  # exactly one run for the unit
    assert tracker.client.get_run(half.info.run_id).info.lifecycle_stage == "deleted"


def test_late_duplicates_of_a_sweep_are_pruned_and_other_sweeps_kept(tracker):
    parent = tracker.start_sweep("sweep", "k3", {})
    other = tracker.start_sweep("other", "k4", {})
    kept = tracker.log_unit(parent, "u5", "A2/RS/seed0", {}, {"final_regret": 0.1})
    tags = {PARENT: parent, UNIT_KEY: "u5", KIND: "unit"}
    late_running = tracker.client.create_run(tracker.experiment_id, tags=tags).info.run_id
    late_finished = tracker.client.create_run(tracker.experiment_id, tags=tags).info.run_id
    tracker.client.set_terminated(late_finished, "FINISHED")
    foreign = tracker.client.create_run(tracker.experiment_id, tags=tags | {PARENT: other}).info.run_id
    untouched = tracker.log_unit(parent, "u6", "A2/RS/seed1", {}, {"final_regret": 0.2})

    assert tracker.prune_duplicates(parent, {"u5": kept, "u6": untouched}) == 2
    live = {
        r.info.run_id for r in tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    }
    assert live == {kept, foreign, untouched}
    assert tracker.client.get_run(late_running).info.lifecycle_stage == "deleted"
    assert tracker.client.get_run(late_finished).info.lifecycle_stage == "deleted"
    assert tracker.prune_duplicates(parent, {"u5": kept, "u6": untouched}) == 0
