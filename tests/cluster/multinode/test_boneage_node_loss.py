"""A bone-age trainer whose node is removed after its first epoch: the checkpoint on that node's
disk is gone with it, so the trainer, restarted by Ray on another node, resumes from the checkpoint
in its MLflow run and trains each epoch once."""

from __future__ import annotations

import os
import re
import shutil

from cluster.scheduler import FAULT_ENV
from cluster.tracking import KIND, Tracker


def test_a_trainer_on_a_removed_node_resumes_from_its_mlflow_checkpoint_elsewhere(
    nodes, strike, tmp_path, monkeypatch, boneage_tiny
):
    import jobs.bone_age as job

    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(tmp_path / "cache"))
    marker, disk, events = tmp_path / "held", tmp_path / "node-disk", {}
    monkeypatch.setenv(FAULT_ENV, strike.hold_env("rsna", marker, after_epoch=1))
    uri = f"file:{tmp_path / 'mlruns'}"
    args = ["--variants", "rsna", *boneage_tiny, "--tracking-uri", uri, "--output-dir", str(tmp_path / "out")]

    def lose_node(where: dict) -> None:
        events["node"], events["nodes_before"] = where["node_id"], nodes.alive()
        assert (disk / os.listdir(disk)[0] / "last.pt").exists()  # its local checkpoint of epoch 1
        shutil.rmtree(disk)  # the node's local disk goes with the node
        nodes.remove(where["node_id"])

    with strike.recorded() as out, strike.when_held(marker, lose_node):
        assert job.main([*args, "--set", f"checkpoint_dir={disk}"]) == 0
    removed = events["node"]
    assert removed not in nodes.alive()

    tracker = Tracker(uri, "bone-age")
    (run,) = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    assert run.info.status == "FINISHED" and run.data.metrics["resumed_from_epoch"] == 1
    assert re.search(rf"rsna: resumed from its checkpoint at epoch 1 \(run {run.info.run_id}\)", "".join(out))
    history = tracker.load_table(run.info.run_id, "history.parquet").to_pandas()
    assert history["epoch"].tolist() == [0, 1, 2]  # before training, then each epoch once
    # a whole GPU on a worker node; first attempt on the removed node (params), the last elsewhere (tag)
    p = run.data.params
    assert p["gpus"] == "1" and re.fullmatch(r"\d+", p["gpu_ids"]) and p["node_id"] == removed
    assert run.data.tags["node_id"] in events["nodes_before"] - {removed, nodes.head_id}
