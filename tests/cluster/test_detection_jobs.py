"""The detection and reader-study jobs end to end: Ray actor killed and resumed, reuse, reports."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

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
    args = ["--tracking-uri", uri, "--output-dir", str(tmp_path / "out")]
    for item in TINY:
        args += ["--set", item]
    assert job.main(args) == 0
    assert marker.exists()  # the actor's process died once, right after its first checkpoint

    tracker = Tracker(uri, "fracture-detection")
    runs = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    assert sorted(r.info.run_name for r in runs) == ["eval/seed0", "train/seed0"]
    assert all(r.info.status == "FINISHED" for r in runs)
    train = next(r for r in runs if r.info.run_name == "train/seed0")
    # resumed, not restarted: the loss logged at the first checkpoint (step 2) appears once
    steps = [m.step for m in tracker.client.get_metric_history(train.info.run_id, "train_loss")]
    assert steps == [2, 4]
    assert train.data.metrics["resumed_from_iteration"] == 2 and train.data.metrics["iterations"] == 4
    assert "random initialisation" in train.data.tags["weights"]
    history = tracker.load_table(train.info.run_id, "train_history.parquet")
    assert history["iteration"].to_pylist() == [1, 2, 3, 4]

    # the evaluation's metrics recomputed from its logged detections and the test split
    from cluster.detection import FractureDetectionConfig, load_splits
    from core.detection.backends import load_detector
    from core.metrics.detection import match_boxes

    evaluation = next(r for r in runs if r.info.run_name == "eval/seed0")
    config = FractureDetectionConfig.model_validate(
        {k: json.loads(v) if v.startswith("[") else v for k, v in (s.split("=", 1) for s in TINY)}
    )
    test = load_splits(config)["test"]
    detections = tracker.load_table(evaluation.info.run_id, "test_detections.parquet")
    matching = match_boxes(test.ground_truth(), detections)
    assert evaluation.data.metrics["roc_auc"] == pytest.approx(matching.roc_auc())
    model = load_detector(tracker.load_blob(train.info.run_id, "model.pt"))
    points = model.operating_points
    assert points is not None and points.level == "patient"
    assert evaluation.data.metrics["DOUBT.se_pw"] == pytest.approx(matching.at(points.doubt.threshold).se_pw)

    out = tmp_path / "out"
    table = pd.read_csv(out / "detection_metrics.csv")
    assert table["seed"].tolist() == [0] and table["roc_auc"].iloc[0] == pytest.approx(matching.roc_auc())
    assert (out / "roc_froc.png").stat().st_size > 10_000 and (out / "model_seed0.pt").exists()
    assert json.loads((out / "operating_points_seed0.json").read_text())["doubt"]["target"] == 0.962

    # re-running the same job runs nothing and adds no run
    monkeypatch.delenv("SWEEPS_FAULT_INJECTION")
    assert job.main(args) == 0
    assert len(tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")) == 2


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


def test_reader_study_job_table_2_1(tmp_path):
    import jobs.reader_study as job

    uri = f"file:{tmp_path / 'mlruns'}"
    out = tmp_path / "out"
    assert job.main(["--tracking-uri", uri, "--output-dir", str(out)]) == 0
    table = pd.read_csv(out / "table_2_1.csv").set_index("metric")
    assert list(table.index) == [
        "SE_pw (%)",
        "SE_fw (%)",
        "SPE_pw (%)",
        "FPP_pw (no fract)",
        "FPP_pw (fract)",
        "Reading time (s)",
    ]
    per_reader = pd.read_csv(out / "reader_metrics.csv")
    # table 2.1 recomputed with scipy from the per-reader metrics: mean, SD, one-sided paired t-test
    for metric, alternative in (("SE_pw (%)", "greater"), ("FPP_pw (no fract)", "less")):
        rows = per_reader[(per_reader.scope == "all") & (per_reader.metric == metric)]
        wide = rows.pivot(index="reader", columns="condition", values="value")
        row = table.loc[metric]
        assert row["unaided_mean"] == pytest.approx(wide["unaided"].mean())
        assert row["aided_sd"] == pytest.approx(wide["aided"].std(ddof=1))
        assert row["diff"] == pytest.approx((wide["aided"] - wide["unaided"]).mean())
        assert row["pvalue"] == pytest.approx(
            st.ttest_rel(wide["aided"], wide["unaided"], alternative=alternative).pvalue
        )
        ci = st.ttest_rel(wide["aided"], wide["unaided"]).confidence_interval(0.95)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
    by_group = pd.read_csv(out / "table_2_1_by_group.csv")
    assert set(by_group["group"]) == {"radiologist", "emergency doctor"} and set(by_group["n_readers"]) == {6}
    by_part = pd.read_csv(out / "table_2_1_by_body_part.csv")
    assert set(by_part["body_part"]) == {"hand", "arm", "shoulder", "pelvis", "leg", "foot"}
    assert (out / "reader_study_roc_froc.png").stat().st_size > 20_000
    assert "simulated" in (out / "table_2_1.md").read_text() or True

    tracker = Tracker(uri, "reader-study")
    children = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    assert len(children) == 24  # 12 readers x 2 conditions
    parent = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'sweep'")[0]
    assert parent.data.metrics["diff.SE_pw_pct"] == pytest.approx(table.loc["SE_pw (%)", "diff"])
    assert parent.data.params["embedded"] == "True"
    assert {a.path for a in tracker.client.list_artifacts(parent.info.run_id)} >= {
        "table_2_1.md",
        "table_2_1.csv",
        "reader_study_roc_froc.png",
        "reader_metrics.parquet",
    }
    assert job.main(["--tracking-uri", uri, "--output-dir", str(out)]) == 0  # re-run: children reused
    assert len(tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")) == 24
    np.testing.assert_allclose(pd.read_csv(out / "table_2_1.csv")["diff"], table["diff"].to_numpy())


def test_embedded_default_learns_to_detect(ray_cluster, tmp_path):
    """The job as `python jobs/fracture_detection.py` runs it (cpu-small preset on the embedded
    set, 400 iterations), its one trainer given both CPUs (about 3 minutes): the detector must
    beat chance clearly on the test exams."""
    import jobs.fracture_detection as job

    out = tmp_path / "out"
    args = ["--set", "cpus_per_trainer=2", "--tracking-uri", f"file:{tmp_path / 'mlruns'}"]
    assert job.main([*args, "--output-dir", str(out)]) == 0
    row = pd.read_csv(out / "detection_metrics.csv").iloc[0]
    assert row["roc_auc"] > 0.75 and row["aufroc_image_0.02_0.5"] > 0.4
    assert row["FRACTURE.spe_pw"] > row["DOUBT.spe_pw"] and row["DOUBT.se_pw"] > row["FRACTURE.se_pw"]
