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


# ---- issue 17: provenance, real times, reuse across experiments, readable runs, models ----------
def _git(*args) -> str:
    import subprocess

    from core.paths import REPO_ROOT

    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True).stdout.strip()


def test_parent_and_child_runs_carry_provenance_and_the_config(tracker):
    import yaml

    from cluster.tracking import (
        GIT_COMMIT,
        GIT_DIRTY,
        PROJECT_VERSION,
        RAY_ADDRESS,
        SOURCE_NAME,
        USER,
        sweep_run_name,
    )

    params = {"preset": "smoke", "spaces": ["A2", "FULL"], "budget": 60, "output_dir": "out"}
    name = sweep_run_name("nb101-sweep", params, "0123456789abcdef")
    assert name == "nb101-sweep smoke A2,FULL 01234567"
    parent = tracker.start_sweep(name, "k5", params)
    child = tracker.log_unit(parent, "u7", "A2/RS/seed0", {"seed": 0}, {"final_regret": 0.1})
    dirty = "true" if _git("status", "--porcelain", "--untracked-files=no") else "false"
    for run_id in (parent, child):
        tags = tracker.client.get_run(run_id).data.tags
        assert tags[GIT_COMMIT] == _git("rev-parse", "HEAD") and len(tags[GIT_COMMIT]) == 40
        assert tags[GIT_DIRTY] == dirty
        assert tags[PROJECT_VERSION] == "0.1.0"  # pyproject.toml
        assert tags[USER] and tags[SOURCE_NAME] and tags[RAY_ADDRESS]
    assert tracker.client.get_run(parent).info.run_name == name
    saved = yaml.safe_load(tracker.load_blob(parent, "config.yaml"))
    assert saved == params


def test_a_unit_run_spans_its_work_and_steps_keep_their_own_times(tracker):
    import time

    from cluster.tracking import STEP_TIME, Timed, now_ms, stamped, timed, work_window

    parent = tracker.start_sweep("sweep", "k6", {})
    with work_window():
        time.sleep(0.3)  # the work
        run_id = tracker.log_unit(parent, "u8", "A2/RS/seed1", {}, {"final_regret": 0.2})
    info = tracker.client.get_run(run_id).info
    assert info.end_time - info.start_time >= 300  # a run written in one go, dated from its work
    # a result computed in one process and logged in another keeps its start
    result = stamped(lambda: 5)()
    assert isinstance(result, Timed) and result.value == 5 and abs(result.started_ms - now_ms()) < 5000
    with work_window(result.started_ms - 60_000):
        late = tracker.log_unit(parent, "u9", "A2/RS/seed2", {}, {})
    late_info = tracker.client.get_run(late).info
    assert late_info.start_time == result.started_ms - 60_000 and late_info.end_time >= result.started_ms
    assert timed(lambda: 7)() == 7
    # step metrics: wall-clock timestamps (the time each step ended), never 0
    stamps = [now_ms() - 2000, now_ms() - 1000]
    tracker.log_steps(run_id, [{"epoch": 1, "loss": 0.5, STEP_TIME: stamps[0]}, {"epoch": 2, "loss": 0.4}])
    history = tracker.client.get_metric_history(run_id, "loss")
    assert [h.step for h in history] == [1, 2] and history[0].timestamp == stamps[0]
    assert history[1].timestamp >= stamps[1] and STEP_TIME not in tracker.run_metrics(run_id)
    assert all(m.timestamp > 1.7e12 for m in tracker.client.get_metric_history(run_id, "final_regret"))


def test_a_finished_unit_is_reused_from_any_experiment_and_a_dry_run_creates_nothing(tmp_path):
    uri = f"file:{tmp_path / 'mlruns'}"
    baselines = Tracker(uri, "nb101-baselines")
    parent = baselines.start_sweep("baselines", "kb", {})
    run_id = baselines.log_unit(parent, "shared-key", "A2/RS/seed0", {}, {"final_regret": 0.3})
    reader = Tracker(uri, "nb101-sweep-dry", create=False)
    assert reader.experiment_id is None and reader.client.get_experiment_by_name("nb101-sweep-dry") is None
    assert reader.finished_units() == {"shared-key": run_id}  # found from another experiment
    assert reader.find_sweep("kb") is None
    sweep = Tracker(uri, "nb101-sweep")
    assert sweep.finished_units() == {"shared-key": run_id}
    assert sweep.read_result("shared-key", run_id).metrics["final_regret"] == 0.3
    assert baselines.finished_units(parent) == {"shared-key": run_id}  # of one sweep


def test_a_sweep_run_describes_itself_shows_its_figures_and_records_its_data(tracker, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cluster.tracking import DESCRIPTION, DatasetRef

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3], [0.3, 0.2, 0.1])
    fig.savefig(tmp_path / "regret_vs_time.png")
    plt.close(fig)
    (tmp_path / "table.md").write_text("| a |\n|---|\n| 1 |\n")
    bench = DatasetRef("nb101-benchmark", "abc123def456", str(tmp_path / "table.md"), "benchmark")
    synthetic = DatasetRef("patches", "feed", "embedded synthetic patches (made by this project)")
    parent = tracker.start_sweep("sweep", "k7", {}, datasets=(bench, synthetic))
    markdown = "# Report\n\n" + "x" * 9000
    tracker.finish_sweep(
        parent, {"units": 1}, [tmp_path / "regret_vs_time.png", tmp_path / "table.md"], description=markdown
    )
    run = tracker.client.get_run(parent)
    description = run.data.tags[DESCRIPTION]
    assert description.startswith("# Report") and len(description) <= 8000 and "cut here" in description
    top = {a.path for a in tracker.client.list_artifacts(parent)}
    assert {"table.md", "figures", "images", "config.yaml"} <= top
    assert [a.path for a in tracker.client.list_artifacts(parent, "figures")] == [
        "figures/regret_vs_time.png"
    ]
    assert any("regret_vs_time" in a.path for a in tracker.client.list_artifacts(parent, "images"))
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert inputs["nb101-benchmark"].dataset.digest == "abc123def456"
    assert inputs["nb101-benchmark"].dataset.source_type == "local"
    assert [t.value for t in inputs["nb101-benchmark"].tags] == ["benchmark"]
    assert inputs["patches"].dataset.source_type == "code"


def test_a_trainer_run_gets_system_metrics_and_a_registered_model_that_predicts_the_same(tmp_path):
    import time

    import mlflow.pytorch
    import torch

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "models")
    parent = tracker.start_sweep("sweep", "k8", {})
    run_id = tracker.open_unit(parent, "u10", "variant", {})
    with tracker.system_metrics(run_id, interval=0.2):
        time.sleep(1.0)
    metrics = tracker.run_metrics(run_id)
    assert 0 <= metrics["system/cpu_utilization_percentage"] <= 100
    assert metrics["system/system_memory_usage_megabytes"] > 0
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(2)
    )
    x = torch.randn(3, 1, 8, 8)
    expected = net(x).detach()
    model_uri = tracker.log_model(run_id, net, x[:2], register_as="fractnet-test", tags={"variant": "v1"})
    version = tracker.client.get_model_version("fractnet-test", "1")
    assert version.tags["variant"] == "v1" and version.run_id == run_id
    mlflow.set_tracking_uri(uri)
    loaded = mlflow.pytorch.load_model("models:/fractnet-test/1")
    torch.testing.assert_close(loaded(x), expected)  # a batch of another size: the batch axis is free
    info = mlflow.models.get_model_info(model_uri)
    assert [s.shape for s in info.signature.inputs.inputs] == [(-1, 1, 8, 8)]
    assert info.saved_input_example_info is not None
