"""jobs/nb101_sweep.py: dry run, bad configs, and a driver killed mid-sweep then re-submitted,
which must end in the same MLflow state as an uninterrupted sweep; `python -m stats` builds the
sweep's tables from its own runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from cluster.tracking import KIND, Tracker
from core.paths import REPO_ROOT


def _state(uri: str, experiment: str) -> dict:
    """Unit name -> (key, metrics) of every live unit run, and the number of live unit runs."""
    tracker = Tracker(uri, experiment)
    runs = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    state = {
        r.info.run_name: (r.data.tags["sweeps.unit_key"], r.info.status, dict(r.data.metrics)) for r in runs
    }
    return state, len(runs)


def _duplicates(uri: str, experiment: str) -> list:
    """(name, status, start time) of unit runs whose name occurs more than once: for failure messages."""
    tracker = Tracker(uri, experiment)
    runs = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    names = [r.info.run_name for r in runs]
    return sorted(
        (r.info.run_name, r.info.status, r.info.start_time) for r in runs if names.count(r.info.run_name) > 1
    )


def _stats_tables(uri: str, experiment: str, out) -> dict:
    """Tables 4.3-4.5 built by `python -m stats` from the sweep's own child runs."""
    import pandas as pd

    from stats import cli

    tracker = Tracker(uri, experiment)
    (sweep,) = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'sweep'")
    tables = {}
    for kind in ("oneshot", "correlation"):
        args = ["table", kind, "--experiment", experiment, "--tracking-uri", uri]
        assert cli.main([*args, "--parent-run", sweep.info.run_id, "--out", str(out)]) == 0
        tables[kind] = pd.read_parquet(out / f"{kind}.parquet")
    return tables


def test_killed_driver_resubmitted_equals_uninterrupted(
    ray_cluster, tmp_path, tracking_server, experiment, nb101_reference, nb101_small, deterministic
):
    import jobs.nb101_sweep as job

    # the uninterrupted reference on a store of its own (units are reused from any experiment of a
    # server, so on the same server the second sweep would find all of them finished), shared with
    # the multi-node test that loses a node mid-sweep
    uri, crashed = tracking_server, f"{experiment}-crashed"
    small = [*nb101_small, "--tracking-uri", uri]
    reference, n_reference = _state(*nb101_reference(nb101_small))
    assert n_reference == len(reference) == 2 * 2 + 2 + 1 + 2 * 2  # baselines, supernets, evaluation, WS

    args = [
        sys.executable,
        "jobs/nb101_sweep.py",
        *small,
        "--set",
        f"experiment={crashed}",
        "--output-dir",
        str(tmp_path / "o2"),
    ]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        args,
        cwd=REPO_ROOT,
        start_new_session=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(2)
            state, _ = _state(uri, crashed)
            if sum(s[1] == "FINISHED" for s in state.values()) >= 4:
                break
            assert proc.poll() is None, "the sweep ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray cluster it started
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    partial, _ = _state(uri, crashed)
    assert 4 <= sum(s[1] == "FINISHED" for s in partial.values()) < len(reference)

    assert job.main([*small, "--set", f"experiment={crashed}", "--output-dir", str(tmp_path / "o3")]) == 0
    final, n_final = _state(uri, crashed)
    assert n_final == len(final) == len(reference), _duplicates(uri, crashed)  # no duplicated unit runs
    assert set(final) == set(reference)
    for name, (key, status, metrics) in final.items():
        ref_key, _, ref_metrics = reference[name]
        assert key == ref_key and status == "FINISHED"
        assert deterministic(metrics) == pytest.approx(deterministic(ref_metrics)), name
    tracker = Tracker(uri, crashed)
    assert len(tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'sweep'")) == 1
    out = tmp_path / "o3"
    assert (
        (out / "oneshot.md").exists() and (out / "budgets.md").exists() and (out / "regret_A2.png").exists()
    )
    assert "Times: modelled clock" in (out / "report.md").read_text()

    # every search names its role and logs its regret curve as step metrics
    units = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    runs = [r for r in units if "method" in r.data.params]
    assert sorted({r.data.params["method"] for r in runs}) == ["GS_bs", "GS_ws", "RS_bs", "RS_ws"]
    ws = next(r for r in runs if r.data.params["method"] == "RS_ws")
    trajectory = tracker.load_table(ws.info.run_id, "trajectory.parquet")
    assert trajectory.num_rows == 20  # every visited cell (ws_budget), best proxy first
    history = tracker.client.get_metric_history(ws.info.run_id, "regret")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == trajectory["regret"].to_pylist()

    # python -m stats reads the sweep's runs into the same tables 4.3-4.5
    import pandas as pd

    tables = _stats_tables(uri, crashed, tmp_path / "tables")
    for kind, keys, columns in (
        ("oneshot", ["space", "pair"], ["mean_diff", "pooled_sd", "pvalue"]),
        ("correlation", ["space", "variant"], ["mean"]),
    ):
        report = pd.read_parquet(out / f"{kind}.parquet").sort_values(keys)
        built = tables[kind].sort_values(keys)
        assert built[keys].values.tolist() == report[keys].values.tolist() and len(report) > 0
        for column in columns:
            assert built[column].to_numpy() == pytest.approx(report[column].to_numpy(), nan_ok=True)


def test_dry_run_and_bad_config(tmp_path, capsys, nb101_small):
    import jobs.nb101_sweep as job

    assert job.main([*nb101_small, "--tracking-uri", f"file:{tmp_path / 'm'}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "nb101-ws-search" in out and "total: 11 units" in out and "proxy evaluations" in out
    assert "clock: modelled clock" in out and "simulated cost on this clock" in out
    default = [
        "--spaces",
        "A1",
        "--tracking-uri",
        f"file:{tmp_path / 'm'}",
        "--dry-run",
        "--cluster-gpus",
        "8",
    ]
    assert job.main(default) == 0
    out = capsys.readouterr().out
    assert "clock: calibrated clock (timed): " in out and "2,532 cells timed" in out
    assert "device work still to run (device-hours, from cpu: " in out and "wall time on 8 GPU(s)" in out
    assert job.main(["--preset", "smoke", "--set", "ws_seeds=1", "--tracking-uri", f"file:{tmp_path}"]) == 2
    assert "ws_seeds" in capsys.readouterr().err
    assert job.main(["--preset", "smoke", "--set", "supernet.variant_x=1"]) == 2
    assert "variant_x" in capsys.readouterr().err
    mixed = ["--preset", "smoke", "--benchmark", "real-subset", "--tracking-uri", f"file:{tmp_path / 'x'}"]
    assert job.main(mixed) == 2
    assert "supernets would train on digits but benchmark" in capsys.readouterr().err
    assert job.main(["--set", "clock=benchmark", "--tracking-uri", f"file:{tmp_path / 'x'}"]) == 2
    assert "the mix thesis 4.3.3 refuses" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_an_error_after_the_sweep_started_leaves_it_failed(
    ray_cluster, tmp_path, sweep_status, broken, nb101_small
):
    import jobs.nb101_sweep as job

    error = broken(job, "run_graph")
    uri = f"file:{tmp_path / 'mlruns'}"
    with pytest.raises(RuntimeError, match="run_graph broke"):
        job.main([*nb101_small, "--tracking-uri", uri, "--output-dir", str(tmp_path / "out")])
    assert sweep_status(uri, "nb101-sweep") == ("FAILED", error)
