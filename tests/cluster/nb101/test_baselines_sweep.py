"""The baseline sweep end to end on a local Ray cluster: fault injection, resume, regret check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cluster.tracking import KIND, UNIT_KEY, Tracker


def test_sweep_survives_a_killed_worker_and_resumes_without_rework(
    real_nb101, ray_cluster, tmp_path, monkeypatch, tracking_server, experiment
):
    import jobs.nb101_baselines as job

    uri = tracking_server
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("SWEEPS_FAULT_INJECTION", json.dumps({"unit": "A2/GS/seed1", "marker": str(marker)}))
    args = [
        "--benchmark",
        "real-subset",
        "--spaces",
        "A2",
        "--seeds",
        "3",
        "--budget",
        "150",
        "--tracking-uri",
        uri,
        "--output-dir",
        str(tmp_path / "out"),
        "--set",
        f"experiment={experiment}",
    ]
    assert job.main(args) == 0
    assert marker.exists()  # the worker running A2/GS/seed1 really died once

    tracker = Tracker(uri, experiment)
    runs = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    names = sorted(r.info.run_name for r in runs)
    assert names == sorted(f"A2/{m}/seed{s}" for m in ("RS", "GS") for s in range(3))  # each exactly once
    assert all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.tags[UNIT_KEY] for r in runs}) == 6

    # regret recomputed independently from a logged RS trajectory equals the logged regret
    from core.nb101.benchmark import Benchmark

    bench = Benchmark.real_subset()
    best = bench.best("A2")["best_mean_test_accuracy"]
    rs = next(r for r in runs if r.info.run_name == "A2/RS/seed0")
    traj = tracker.load_table(rs.info.run_id, "trajectory.parquet")
    test = bench.mean("test_accuracy")[bench.lookup(traj["hash"].to_pylist())[0]]
    best_val, recomputed = -1.0, []
    for val, t in zip(traj["validation"].to_pylist(), test):
        if val > best_val:
            best_val, incumbent_test = val, t
        recomputed.append(best - incumbent_test)
    assert np.allclose(recomputed, traj["regret"].to_numpy(), atol=1e-12)
    assert rs.data.metrics["final_regret"] == pytest.approx(recomputed[-1])
    assert traj["sim_time"].to_numpy()[-1] == pytest.approx(rs.data.metrics["sim_time_total"])

    out = tmp_path / "out"
    assert (out / "final_regret.md").exists() and (out / "regret_A2.png").stat().st_size > 10_000
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(out / "final_regret.csv").to_pylist()
    assert [(r["space"], r["method"], r["seeds"]) for r in table] == [("A2", "RS", 3), ("A2", "GS", 3)]

    # re-running the finished sweep runs nothing and adds no run
    monkeypatch.delenv("SWEEPS_FAULT_INJECTION")
    assert job.main(args) == 0
    again = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    assert len(again) == 6
    parents = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'sweep'")
    assert len(parents) == 1 and parents[0].data.metrics["units_skipped"] == 6


def test_bad_config_fails_before_any_work(tmp_path, capsys):
    import jobs.nb101_baselines as job

    assert job.main(["--spaces", "A9", "--tracking-uri", f"file:{tmp_path}"]) == 2
    assert "spaces: Value error, unknown sub-space(s) ['A9']" in capsys.readouterr().err
    assert job.main(["--set", "budgett=5", "--tracking-uri", f"file:{tmp_path}"]) == 2
    assert "budgett: Extra inputs are not permitted" in capsys.readouterr().err
    assert job.main(["--benchmark", str(tmp_path / "nope.parquet")]) == 2
    assert "benchmark: file not found" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_an_error_after_the_sweep_started_leaves_it_failed(ray_cluster, tmp_path, sweep_status, broken):
    import jobs.nb101_baselines as job

    error = broken(job, "run_units")
    uri = f"file:{tmp_path / 'mlruns'}"
    args = ["--spaces", "A2", "--seeds", "2", "--budget", "10", "--tracking-uri", uri]
    with pytest.raises(RuntimeError, match="run_units broke"):
        job.main([*args, "--output-dir", str(tmp_path / "out")])
    assert sweep_status(uri, "nb101-baselines") == ("FAILED", error)
