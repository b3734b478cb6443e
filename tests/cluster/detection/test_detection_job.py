"""The fracture-detection job end to end: Ray actor killed and resumed, reuse, report, a failed sweep."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

from cluster.tracking import KIND, Tracker

TINY = [
    "synthetic_studies=20",
    "synthetic_image_size=64",
    "split_fractions=[0.5, 0.25, 0.25]",
    "backbone=resnet18",
    "fpn_channels=16",
    "head_channels=16",
    "box_fc=32",
    "min_size=[64]",
    "max_size=64",
    "batch_size=2",
    "iterations=4",
    "checkpoint_every=2",
    "warmup_iterations=2",
    "rpn_post_nms_top_n_test=20",
    "box_batch_size_per_image=16",
    "detections_per_image=10",
]


def test_detection_job_survives_a_killed_trainer_and_reuses_finished_units(
    ray_cluster, tmp_path, monkeypatch
):
    import jobs.fracture_detection as job

    uri = f"file:{tmp_path / 'mlruns'}"
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("SWEEPS_FAULT_INJECTION", json.dumps({"unit": "train/seed0", "marker": str(marker)}))
    args = ["--tracking-uri", uri, "--output-dir", str(tmp_path / "out"), "--register-model", "detector-test"]
    for item in TINY:
        args += ["--set", item]
    assert job.main(args) == 0
    assert marker.exists()  # the actor's process died once, right after its first checkpoint

    tracker = Tracker(uri, "fracture-detection")
    runs = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    assert sorted(r.info.run_name for r in runs) == ["eval/seed0", "train/seed0"]
    assert all(r.info.status == "FINISHED" for r in runs)
    train = next(r for r in runs if r.info.run_name == "train/seed0")
    # resumed, not restarted: the loss logged at the first checkpoint (step 2) appears once (a file
    # store repeats the last step's metrics, same time, when the logged model is linked to them)
    history = tracker.client.get_metric_history(train.info.run_id, "train_loss")
    assert [step for step, _ in sorted({(m.step, m.timestamp) for m in history})] == [2, 4]
    assert train.data.metrics["resumed_from_iteration"] == 2 and train.data.metrics["iterations"] == 4
    assert tracker.load_blob(train.info.run_id, "checkpoints/last.pt") is not None
    assert "random initialisation" in train.data.tags["weights"]
    history = tracker.load_table(train.info.run_id, "train_history.parquet")
    assert history["iteration"].to_pylist() == [1, 2, 3, 4]

    # the evaluation's metrics recomputed from its logged detections and the test split
    from cluster.detection.config import FractureDetectionConfig
    from cluster.detection.data import load_splits
    from core.detection.backends import load_detector
    from core.metrics.detection import match_boxes

    evaluation = next(r for r in runs if r.info.run_name == "eval/seed0")
    config = FractureDetectionConfig.model_validate(
        {k: json.loads(v) if v.startswith("[") else v for k, v in (s.split("=", 1) for s in TINY)}
    )
    splits = load_splits(config)
    test = splits["test"]
    detections = tracker.load_table(evaluation.info.run_id, "test_detections.parquet")
    matching = match_boxes(test.ground_truth(), detections)
    assert evaluation.data.metrics["roc_auc"] == pytest.approx(matching.roc_auc())
    model = load_detector(tracker.load_blob(train.info.run_id, "model.pt"))
    points = model.operating_points
    assert points is not None and points.level == "patient"
    assert evaluation.data.metrics["DOUBT.se_pw"] == pytest.approx(matching.at(points.doubt.threshold).se_pw)

    # the evaluation's run is dated from when the evaluation started (loading, predicting), not
    # from when it was logged
    assert evaluation.info.end_time - evaluation.info.start_time > 100
    assert evaluation.info.start_time >= train.info.end_time - 1000

    dev = tracker.load_table(train.info.run_id, "dev_detections.parquet").to_pandas()
    check_registered_detector(uri, train, dev[dev["image_id"] == splits["dev"].images[0].image_id])

    out = tmp_path / "out"
    table = pd.read_csv(out / "detection_metrics.csv")
    assert table["seed"].tolist() == [0] and table["roc_auc"].iloc[0] == pytest.approx(matching.roc_auc())
    assert (out / "roc_froc.png").stat().st_size > 10_000 and (out / "model_seed0.pt").exists()
    assert json.loads((out / "operating_points_seed0.json").read_text())["doubt"]["target"] == 0.962

    # re-running the same job runs nothing and adds no run
    monkeypatch.delenv("SWEEPS_FAULT_INJECTION")
    assert job.main(args) == 0
    assert len(tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")) == 2
    with _use_tracking_uri(uri):  # a file registry reads versions on the global URI
        assert [v.version for v in tracker.client.search_model_versions("name = 'detector-test'")] == [1]


def check_registered_detector(uri: str, train, first_dev_image) -> None:
    """The registered detector loads (a pyfunc from code, its weights read with weights_only) and
    gives, on its input example (the first dev image), the boxes the trainer's detector gave."""
    import mlflow

    from core.detection.evaluate import FINDING_COLUMNS

    with _use_tracking_uri(uri):  # a file registry reads versions on the global URI
        version = mlflow.MlflowClient(uri).get_model_version("detector-test", "1")
        model = mlflow.pyfunc.load_model("models:/detector-test/1")
    assert version.run_id == train.info.run_id and version.tags["unit"] == "train/seed0"
    example = model.input_example
    assert example.shape == (1, 64, 64) and example.dtype == np.float32
    found = model.predict(example)
    assert list(found.columns) == list(FINDING_COLUMNS) and len(found) > 0
    boxes = ["x0", "y0", "x1", "y1", "score"]  # the trainer's detector on the same image, in calibrate
    np.testing.assert_allclose(
        found[boxes].to_numpy(), first_dev_image[boxes].to_numpy(), rtol=1e-4, atol=1e-3
    )
    assert set(found["finding"]) <= {"", "DOUBT", "FRACTURE"}


def test_the_auto_preset_is_cpu_small_on_the_embedded_set_and_thesis_on_real_data(tmp_path):
    import jobs.fracture_detection as job

    def config(*args):
        return job.CLI.config(job.CLI.parse(list(args)))

    (tmp_path / "exams.json").write_text("{}")  # only its existence is checked here
    embedded, real = config(), config("--coco", str(tmp_path / "exams.json"))
    assert (embedded.preset, embedded.iterations, embedded.backbone) == ("cpu-small", 320, "resnet18")
    assert (real.preset, real.iterations, real.backbone) == ("thesis", 270_000, "resnet50")
    chosen = config("--preset", "thesis", "--iterations", "9", "--set", "lr=0.01")
    assert (chosen.preset, chosen.iterations, chosen.lr, chosen.checkpoint_every) == ("thesis", 9, 0.01, 5000)
    assert config("--set", "preset=thesis").preset == "thesis"


def test_detection_job_rejects_bad_config_before_work(tmp_path, capsys):
    import jobs.fracture_detection as job

    assert job.main(["--coco", str(tmp_path / "none.json"), "--tracking-uri", f"file:{tmp_path}"]) == 2
    assert "coco: Value error, file not found" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text(
        '{"images": [{"id": 1, "file_name": "x.png", "width": 4, "height": 4}], "annotations": []}'
    )
    assert job.main(["--coco", str(tmp_path / "bad.json")]) == 2
    assert "images[0] (id 1): missing 'study_id'" in capsys.readouterr().err
    assert job.main(["--set", "iteratons=3"]) == 2
    assert "iteratons" in capsys.readouterr().err
    assert not (tmp_path / "mlruns").exists()


def tiny_config(**changes):
    from cluster.detection.config import FractureDetectionConfig
    from core.config import parse_override
    from core.detection.config import PRESETS

    return PRESETS.resolve(FractureDetectionConfig, None, dict(parse_override(s) for s in TINY) | changes)


def test_an_actor_loads_its_splits_once_for_all_its_units(tmp_path, monkeypatch):
    """The actor's cached splits serve its training and its evaluation (they were reloaded per unit)."""
    import cluster.detection.trainer as trainer
    from cluster.detection.data import data_identity
    from cluster.detection.plan import plan
    from cluster.scheduler import TrackingTarget

    config = tiny_config(iterations=2)
    assert config.preset == "cpu-small"  # the embedded set
    loads, load = [], trainer.load_splits

    def counted(c):
        loads.append(c)
        return load(c)

    monkeypatch.setattr(trainer, "load_splits", counted)
    tracker = Tracker(f"file:{tmp_path / 'mlruns'}", "fracture-detection")
    target = TrackingTarget(tracker.tracking_uri, tracker.experiment, tracker.start_sweep("s", "k", {}))
    actor = trainer.DetectionTrainer(config.model_dump(mode="json"), None)
    ((train, evaluation),) = plan(config, data_identity(actor.splits()))
    trained = actor.train(train, target)
    tested = actor.evaluate(evaluation, target, {train.key: trained})
    assert len(loads) == 1
    assert trained.metrics["iterations"] == 2 and not trained.tables  # its tables stay in its run
    assert tested.table("curves.parquet").num_rows > 0 and 0 <= tested.metrics["roc_auc"] <= 1


def test_an_error_after_the_parent_run_starts_fails_it(tmp_path, monkeypatch, sweep_status):
    import jobs.fracture_detection as job

    def no_ray(address):
        raise RuntimeError("no Ray cluster here")

    monkeypatch.setattr(job, "init_ray", no_ray)
    uri = f"file:{tmp_path / 'mlruns'}"
    args = ["--tracking-uri", uri, "--output-dir", str(tmp_path / "out")]
    for item in TINY:
        args += ["--set", item]
    with pytest.raises(RuntimeError, match="no Ray cluster here"):
        job.main(args)
    assert sweep_status(uri, "fracture-detection") == ("FAILED", "RuntimeError: no Ray cluster here")

