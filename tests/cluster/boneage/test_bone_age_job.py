"""The bone-age job: config and data errors before any work, a failure after the parent run
starts marks it FAILED, and the table 6.1 sweep on a local Ray cluster with a killed actor that
resumes from its checkpoint, then a re-run that reuses all."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from cluster.boneage import VARIANTS, load_job_config
from cluster.tracking import KIND, UNIT_KEY, Tracker
from core.config import ConfigError


def test_presets_defaults_and_overrides():
    embedded = load_job_config(None, {"train": {"epochs": 3}})
    assert embedded.preset == "embedded"
    assert embedded.model.backbone == "convnext_atto" and embedded.train.image_size == 64
    assert embedded.train.epochs == 3  # the user's key wins over the preset
    real = {"rsna": {"csv": "a.csv", "images": "i"}, "rhpe": {"csv": "b.csv", "images": "j"}}
    real["clinical"] = {"csv": "c.csv", "images": "k"}
    thesis = load_job_config(None, {"data": real})
    assert thesis.preset == "thesis"
    assert (thesis.model.backbone, thesis.train.image_size, thesis.train.epochs) == (
        "convnext_small",
        600,
        20,
    )
    assert (thesis.train.lr, thesis.train.batch_size, thesis.train.ema_decay) == (5e-5, 16, 0.999)
    assert thesis.model.drop_path == 0.1 and thesis.alpha == 0.5
    forced = load_job_config(None, {"preset": "thesis"})
    assert forced.data.embedded and forced.model.backbone == "convnext_small"


def test_yaml_config_file_then_cli_overrides(tmp_path):
    path = tmp_path / "bone_age.yaml"
    path.write_text(
        "data:\n"
        "  rsna: {csv: /d/rsna.csv, images: /d/rsna, columns: {bone_age: BoneAge}}\n"
        "  clinical: {csv: /d/clinical.csv, images: /d/clinical, age_unit: years}\n"
        "variants: [rsna, rsna+w_ba]\n"
        "train: {epochs: 10, micro_batch_size: 8}\n"
    )
    config = load_job_config(path, {"train": {"lr": 1e-4}})
    assert config.preset == "thesis" and config.variants == ["rsna", "rsna+w_ba"]
    assert (config.train.epochs, config.train.micro_batch_size, config.train.lr) == (10, 8, 1e-4)
    assert config.train.image_size == 600 and config.data.clinical.age_unit == "years"
    assert config.data.rsna.columns == {"bone_age": "BoneAge"}
    path.write_text("train: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_job_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_job_config(tmp_path / "absent.yaml")


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"train\.epoch"):
        load_job_config(None, {"train": {"epoch": 3}})
    with pytest.raises(ConfigError, match="unknown variant"):
        load_job_config(None, {"variants": ["rsna", "bsl"]})
    data = {"clinical": {"csv": "c", "images": "d"}, "rsna": {"csv": "a", "images": "b"}}
    with pytest.raises(ConfigError, match=r"data\.rhpe: required by variant 'rhpe'"):
        load_job_config(None, {"data": data})
    assert load_job_config(None, {"data": data, "variants": ["rsna"]}).preset == "thesis"
    with pytest.raises(ConfigError, match=r"model\.backbone"):
        load_job_config(None, {"model": {"backbone": "not_a_net"}})


def test_bad_config_and_bad_data_stop_before_any_run(tmp_path, monkeypatch, capsys):
    import jobs.bone_age as job
    from core.boneage.config import SyntheticConfig
    from core.boneage.synthetic import write_synthetic

    uri = f"file:{tmp_path / 'mlruns'}"
    assert job.main(["--tracking-uri", uri, "--set", "train.epoch=3"]) == 2
    assert "train.epoch" in capsys.readouterr().err
    assert job.main(["--tracking-uri", uri, "--pretrained", str(tmp_path / "absent.pth")]) == 2
    assert "model.pretrained: checkpoint file not found" in capsys.readouterr().err

    root = write_synthetic(
        SyntheticConfig(n_rsna=8, n_rhpe=4, n_clinical=8, image_size=32), tmp_path / "data"
    )
    (root / "clinical" / "images" / "C0003.png").unlink()
    args = ["--tracking-uri", uri, "--variants", "rsna", "--output-dir", str(tmp_path / "out")]
    args += ["--rsna-csv", str(root / "rsna" / "train.csv"), "--rsna-images", str(root / "rsna" / "images")]
    args += ["--clinical-csv", str(root / "clinical" / "clinical.csv")]
    args += ["--clinical-images", str(root / "clinical" / "images")]
    assert job.main(args) == 2
    err = capsys.readouterr().err
    assert "clinical.csv" in err and "line 5 id 'C0003'" in err
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "out").exists()


def test_a_failure_after_the_parent_run_starts_marks_it_failed(
    tmp_path, monkeypatch, sweep_status, boneage_tiny
):
    import jobs.bone_age as job

    def broken(*_args):
        raise RuntimeError("the trainer pool could not start")

    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(job, "run_sweep", broken)
    uri = f"file:{tmp_path / 'mlruns'}"
    args = ["--tracking-uri", uri, "--output-dir", str(tmp_path / "out"), "--variants", "rsna", *boneage_tiny]
    with pytest.raises(RuntimeError, match="could not start"):
        job.main(args)
    assert sweep_status(uri, "bone-age") == ("FAILED", "RuntimeError: the trainer pool could not start")
    assert not (tmp_path / "out").exists()


def test_sweep_with_a_killed_actor_resumes_and_reruns_nothing(
    ray_cluster, tmp_path, monkeypatch, capsys, boneage_tiny
):
    import jobs.bone_age as job

    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(tmp_path / "cache"))
    marker = tmp_path / "killed-once"
    fault = {"unit": "rhpe+ca", "marker": str(marker), "after_epoch": 1}
    monkeypatch.setenv("SWEEPS_FAULT_INJECTION", json.dumps(fault))
    uri = f"file:{tmp_path / 'mlruns'}"
    out = tmp_path / "out"
    args = [
        "--tracking-uri",
        uri,
        "--output-dir",
        str(out),
        "--set",
        f"checkpoint_dir={tmp_path / 'ckpt'}",
        *boneage_tiny,
    ]
    assert job.main(args) == 0
    assert marker.exists()  # the actor training rhpe+ca really died after its first epoch

    tracker = Tracker(uri, "bone-age")
    runs = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    assert sorted(r.info.run_name for r in runs) == sorted(VARIANTS)  # each variant exactly once
    assert all(r.info.status == "FINISHED" for r in runs)
    by_name = {r.info.run_name: r for r in runs}
    assert by_name["rhpe+ca"].data.metrics["resumed_from_epoch"] == 1
    assert by_name["rsna"].data.metrics["resumed_from_epoch"] == 0
    history = tracker.load_table(by_name["rhpe+ca"].info.run_id, "history.parquet").to_pandas()
    assert history["epoch"].tolist() == [0, 1, 2]  # before training, then both epochs, once each
    killed = by_name["rhpe+ca"].info.run_id
    # a file store repeats the last epoch's metrics when the model is linked to them (same times):
    # each epoch logged once is each (step, time) once
    steps = {
        m: sorted({(x.step, x.timestamp) for x in tracker.client.get_metric_history(killed, m)})
        for m in ("val_mae", "lr")
    }
    steps = {m: [step for step, _ in points] for m, points in steps.items()}
    assert steps == {"val_mae": [0, 1, 2], "lr": [1, 2]}  # step metrics, epoch 0 = before training
    assert "random initialisation" in by_name["rsna"].data.params["init"]
    assert "synthetic" in by_name["rsna"].data.params["data_source"]
    ckpt = tracker.load_blob(by_name["rsna"].info.run_id, "checkpoints/last.pt")
    import io

    import torch

    assert torch.load(io.BytesIO(ckpt), weights_only=True)["epoch"] == 2

    # the parent run holds tables 6.1-6.3, the reader comparison, fig. 6.4 and the weight plots
    parent = tracker.client.get_run(by_name["rsna"].data.tags["mlflow.parentRunId"])
    assert parent.info.status == "FINISHED"
    logged = {f.path for f in tracker.client.list_artifacts(parent.info.run_id)}
    logged |= {f.path for f in tracker.client.list_artifacts(parent.info.run_id, "figures")}
    for name in (
        "bone_age.md",
        "bone_age.parquet",
        "reader_comparison.md",
        "figures/offset_scatter.png",
        "training_summary.md",
        "figures/weights_rsna_BA.png",
        "figures/weights_rhpe_DA.png",
        "figures/weights_rhpe_BA_DA.png",
    ):
        assert name in logged, name
    table = pd.read_parquet(out / "bone_age.parquet")
    assert set(table["model"]) == {"Radiologist"} | {v.label for v in VARIANTS.values()}
    assert len(table) == 7 * 9 * 3  # models x sub-groups (all, F, M, 3 CA bins each) x 3 metrics

    # table MAEs are the MAEs of the logged per-exam predictions (bootstrap estimate = point value)
    preds = pd.read_parquet(out / "clinical_predictions.parquet")
    for model, exams in preds.groupby("model"):
        mae = np.mean(np.abs(exams["predicted"] - exams["bone_age"]))
        row = table[(table["model"] == model) & (table["subgroup"] == "all") & (table["metric"] == "mae")]
        assert row["estimate"].iloc[0] == pytest.approx(mae)
        assert row["ci_low"].iloc[0] <= mae <= row["ci_high"].iloc[0]
    assert not list(tmp_path.glob(".out.tmp-*"))  # the report was moved into place whole
    md = (out / "bone_age.md").read_text()
    assert "+CA+W(BA,DA)" in md and "90% bootstrap CI" in md

    # re-running the same sweep re-trains nothing
    shutil.rmtree(out)
    capsys.readouterr()
    monkeypatch.delenv("SWEEPS_FAULT_INJECTION")
    assert job.main(args) == 0
    text = capsys.readouterr().out
    assert "6 already finished in MLflow (skipped), 0 to run" in text
    assert "BoneAgeTrainer actor" not in text  # nothing to train: no trainer pool was made
    runs = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    assert len(runs) == 6 and len({r.data.tags[UNIT_KEY] for r in runs}) == 6
    assert (out / "bone_age.md").read_text() == md  # same results, read back from MLflow
