"""The MLflow UI as users see it: a real tracking server, the smoke NB-101 sweep, headless Chromium.

The test runs `jobs/nb101_sweep.py --preset smoke` (random search only: `--set methods=[RS]`,
the greedy searches would double its time) against its own server (as a user would, the URI from
MLFLOW_TRACKING_URI), picks two search runs of the sweep (random search, seed 0, without and with
weight sharing: RS_bs and RS_ws), opens the Compare view and the regret chart of both,
and checks that both runs, their params, their metrics and their regret curves are on the pages.
The screenshots are kept as test artefacts in `outputs/test-artifacts/mlflow-ui/` (or
$SWEEPS_TEST_ARTIFACTS). Chromium is required: without it the test fails saying so, it never
skips (`.ci/run` installs it). Cost: the sweep (2-4 minutes on 2 busy cores) and four page
loads (5-20 s each)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

from mlflow.tracking import MlflowClient

from core.paths import REPO_ROOT
from mlflow_server.server import ServerConfig, start, stop

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
ARTIFACTS = (
    Path(os.environ.get("SWEEPS_TEST_ARTIFACTS", REPO_ROOT / "outputs" / "test-artifacts")) / "mlflow-ui"
)


def _render(url: str, screenshot: Path, tmp_path, size: str = "1920,1080") -> str:
    """The page's DOM after its scripts ran (Chromium --dump-dom), and a screenshot of it."""
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chrome'}",
        "--virtual-time-budget=25000",
        f"--window-size={size}",
    ]
    subprocess.run([*flags, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=180)
    done = subprocess.run(
        [*flags, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=180
    )
    return done.stdout


def _ui_number(value: float) -> str:
    """A metric value as the MLflow UI prints it (its `Utils.formatMetric`)."""
    if value == 0:
        return "0"
    if abs(value) < 0.001:
        mantissa, exponent = f"{value:.3e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    digits = 3 if abs(value) < 10 else 2 if abs(value) < 100 else 1
    return f"{round(value, digits):.{digits}f}".rstrip("0").rstrip(".")


def _smoke_sweep(url: str, out: Path) -> None:
    """`jobs/nb101_sweep.py --preset smoke` with random search only, logging where
    MLFLOW_TRACKING_URI says (the server)."""
    job = [
        sys.executable,
        str(REPO_ROOT / "jobs" / "nb101_sweep.py"),
        "--preset",
        "smoke",
        "--output-dir",
        str(out),
    ]
    job += ["--set", "methods=[RS]"]  # random search only: the greedy WS searches would double its time
    env = os.environ | {"MLFLOW_TRACKING_URI": url}
    done = subprocess.run(job, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def test_two_search_runs_of_the_smoke_sweep_compared_in_the_ui(tmp_path, free_ports):
    """A baseline and a weight-sharing random search (seed 0 each) of the smoke sweep: the Compare
    view shows both runs with their params and metrics, the regret chart both curves."""
    assert CHROMIUM, "headless Chromium is required (apt-get install chromium; .ci/run installs it)"
    home = tmp_path / "mlflow"
    url = start(ServerConfig(home=home, port=free_ports(1)[0]))
    try:
        _smoke_sweep(url, tmp_path / "out")
        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("nb101-sweep")
        runs = client.search_runs([experiment.experiment_id], "tags.`sweeps.kind` = 'unit'")
        picked = [
            next(r for r in runs if r.data.tags.get("method") == m and r.data.params.get("seed") == "0")
            for m in ("RS_bs", "RS_ws")
        ]
        ids, names = [r.info.run_id for r in picked], [r.info.run_name for r in picked]
        last_steps = [client.get_metric_history(i, "regret")[-1].step for i in ids]
        assert last_steps == [60, 40]  # the curves are in the runs: the smoke budgets, bs and ws
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        experiments = json.dumps([experiment.experiment_id])

        query = {"runs": json.dumps(ids), "experiments": experiments}
        compare = f"{url}/#/compare-runs?" + urllib.parse.urlencode(query)
        dom = _render(compare, ARTIFACTS / "compare.png", tmp_path, "1920,2400")
        for text in (*names, "Parameters", "method", "seed", "space", "Metrics", "regret", "final_regret"):
            assert text in dom, f"{text!r} not on the compare page"
        for run in picked:
            assert f">{run.data.params['method']}<" in dom
            assert f">{_ui_number(run.data.metrics['final_regret'])}<" in dom

        query |= {
            "metric": json.dumps("regret"),
            "plot_metric_keys": json.dumps(["regret"]),
            "x_axis": "step",
        }
        chart = f"{url}/#/metric?" + urllib.parse.urlencode(query)
        dom = _render(chart, ARTIFACTS / "regret_chart.png", tmp_path)
        assert all(f"{name} (regret)" in dom for name in names), "a run's curve is missing from the legend"
        assert dom.count('class="trace scatter') >= 2  # both curves drawn
        for step in last_steps:  # the table under the chart: each curve's last point
            assert f"(step={step})" in dom

        for shot in ("compare.png", "regret_chart.png"):
            assert (ARTIFACTS / shot).stat().st_size > 20_000
    finally:
        stop(home)
