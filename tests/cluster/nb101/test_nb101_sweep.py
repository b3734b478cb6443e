"""jobs/nb101_sweep.py: dry run, bad configs, and a driver killed mid-sweep then re-submitted,
which must end in the same MLflow state as an uninterrupted sweep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from cluster.tracking import KIND, Tracker
from core.paths import REPO_ROOT

SMALL = [
    "--preset",
    "smoke",
    "--benchmark",
    "real-subset",
    "--baseline-seeds",
    "2",
    "--set",
    "budget=30",
    "--set",
    "ws_budget=20",
    "--set",
    "trained_cells=5",
    "--set",
    "supernet.epochs=2",
    "--set",
    "correlation_cells=12",
]


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


def _deterministic(metrics: dict) -> dict:
    """Metrics that do not depend on wall-clock measurements."""
    timed = ("seconds", "images_per_s", "cells_per_s", "resumed_from_epoch")
    return {k: v for k, v in metrics.items() if not any(t in k for t in timed)}


def test_killed_driver_resubmitted_equals_uninterrupted(
    real_nb101, ray_cluster, tmp_path, tracking_server, experiment
):
    import jobs.nb101_sweep as job

    uri, clean, crashed = tracking_server, f"{experiment}-clean", f"{experiment}-crashed"
    small = [*SMALL, "--tracking-uri", uri]
    assert job.main([*small, "--set", f"experiment={clean}", "--output-dir", str(tmp_path / "o1")]) == 0
    reference, n_reference = _state(uri, clean)
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
        assert _deterministic(metrics) == pytest.approx(_deterministic(ref_metrics)), name
    tracker = Tracker(uri, crashed)
    assert len(tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'sweep'")) == 1
    assert (tmp_path / "o3" / "oneshot.md").exists() and (tmp_path / "o3" / "regret_A2.png").exists()


def test_dry_run_and_bad_config(real_nb101, tmp_path, capsys):
    import jobs.nb101_sweep as job

    assert job.main([*SMALL, "--tracking-uri", f"file:{tmp_path / 'm'}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "nb101-ws-search" in out and "total: 11 units" in out and "proxy evaluations" in out
    assert job.main(["--preset", "smoke", "--set", "ws_seeds=1", "--tracking-uri", f"file:{tmp_path}"]) == 2
    assert "ws_seeds" in capsys.readouterr().err
    assert job.main(["--preset", "smoke", "--set", "supernet.variant_x=1"]) == 2
    assert "variant_x" in capsys.readouterr().err


def test_an_error_after_the_sweep_started_leaves_it_failed(
    real_nb101, ray_cluster, tmp_path, sweep_status, broken
):
    import jobs.nb101_sweep as job

    error = broken(job, "run_graph")
    uri = f"file:{tmp_path / 'mlruns'}"
    with pytest.raises(RuntimeError, match="run_graph broke"):
        job.main([*SMALL, "--tracking-uri", uri, "--output-dir", str(tmp_path / "out")])
    assert sweep_status(uri, "nb101-sweep") == ("FAILED", error)
