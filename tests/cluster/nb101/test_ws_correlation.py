"""The correlation study on Ray: actors, a killed trainer that resumes to identical weights,
reuse on re-submission, and the table/figures it leaves."""

from __future__ import annotations

import io
import json

import pytest
import torch

from cluster.nb101.actors import WEIGHTS
from cluster.tracking import KIND, Tracker


def _supernet_weights(uri: str, experiment: str) -> dict:
    tracker = Tracker(uri, experiment)
    runs = tracker.client.search_runs([tracker.experiment_id], "tags.role = 'supernet'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    blob = tracker.load_blob(runs[0].info.run_id, WEIGHTS)
    return torch.load(io.BytesIO(blob), weights_only=True), runs[0]


def test_study_resumes_a_killed_trainer_and_reuses_finished_units(
    ray_cluster, tmp_path, monkeypatch, tracking_server, experiment
):
    import jobs.ws_correlation as job

    uri, clean, crashed = tracking_server, f"{experiment}-clean", f"{experiment}-crashed"

    common = [  # the embedded benchmark (digits), as the smoke preset's supernets
        "--preset",
        "smoke",
        "--supernets",
        "1",
        "--cells",
        "24",
        "--set",
        "supernet.epochs=3",
    ]
    # the uninterrupted reference on a store of its own: units are reused from any experiment of a
    # server, so on the same server the crashed study would find its supernet already trained
    alone = f"file:{tmp_path / 'reference'}"
    out1 = ["--output-dir", str(tmp_path / "out1")]
    assert job.main([*common, "--tracking-uri", alone, "--set", f"experiment={clean}", *out1]) == 0
    reference, _ = _supernet_weights(alone, clean)
    common += ["--tracking-uri", uri]

    marker = tmp_path / "killed"
    monkeypatch.setenv(
        "SWEEPS_FAULT_INJECTION", json.dumps({"unit": "A2/uniform/supernet0", "marker": str(marker)})
    )
    assert job.main([*common, "--set", f"experiment={crashed}", "--output-dir", str(tmp_path / "out2")]) == 0
    assert marker.exists()  # the trainer's worker died after its first checkpoint
    resumed, run = _supernet_weights(uri, crashed)
    assert run.data.metrics["resumed_from_epoch"] == 1
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)  # same weights as never stopped

    tracker = Tracker(uri, crashed)
    units = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    assert sorted(r.data.tags["role"] for r in units) == ["evaluation", "supernet"]
    evaluation = next(r for r in units if r.data.tags["role"] == "evaluation")
    proxies = tracker.load_table(evaluation.info.run_id, "proxy.parquet")
    assert proxies.num_rows == 24 and {"NO-FT", "BNS-FT", "target", "residual"} <= set(proxies.column_names)
    assert "spearman_BNS_FT" in evaluation.data.metrics

    monkeypatch.delenv("SWEEPS_FAULT_INJECTION")
    assert job.main([*common, "--set", f"experiment={crashed}", "--output-dir", str(tmp_path / "out3")]) == 0
    assert len(tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")) == 2
    sweep = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'sweep'")[0]
    assert sweep.data.metrics["units_skipped"] == 2
    out = tmp_path / "out3"
    table = (out / "correlation.md").read_text()
    assert "| A2 |" in table and "NO-FT" in table and "BNS-FT" in table
    assert (out / "scatter_A2_residual.png").stat().st_size > 10_000


def test_bad_recipe_key_fails_before_any_work(tmp_path, capsys):
    import jobs.ws_correlation as job

    mixed = ["--preset", "smoke", "--benchmark", "real-subset", "--tracking-uri", f"file:{tmp_path}"]
    assert job.main(mixed) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: supernet.dataset: supernets would train on digits but benchmark")
    assert "holds cifar10 accuracies" in err

    assert (
        job.main(["--preset", "smoke", "--set", "supernet.epochz=3", "--tracking-uri", f"file:{tmp_path}"])
        == 2
    )
    assert "epochz" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_an_error_after_the_sweep_started_leaves_it_failed(ray_cluster, tmp_path, sweep_status, broken):
    import jobs.ws_correlation as job

    error = broken(job, "run_graph")
    uri = f"file:{tmp_path / 'mlruns'}"
    with pytest.raises(RuntimeError, match="run_graph broke"):
        job.main(["--preset", "smoke", "--tracking-uri", uri, "--output-dir", str(tmp_path / "out")])
    assert sweep_status(uri, "nb101-ws-correlation") == ("FAILED", error)
