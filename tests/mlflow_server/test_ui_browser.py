"""The MLflow UI as users see it: a real tracking server, a sweep's runs, headless Chromium.

Opens the experiment's runs page and a compare view, takes screenshots and checks that the
expected runs and the params/metrics chosen for the study appear. Skips where Chromium is not
installed (`.ci/run` installs it).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse

import pytest
from mlflow.tracking import MlflowClient

from cluster.tracking import Tracker
from mlflow_server.server import ServerConfig, start, stop

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)"
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _render(url: str, screenshot, tmp_path) -> str:
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
        "--virtual-time-budget=20000",
        "--window-size=1600,1000",
    ]
    subprocess.run([*flags, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=120)
    done = subprocess.run(
        [*flags, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120
    )
    return done.stdout


def test_runs_page_and_compare_view_show_the_sweep(tmp_path):
    url = start(ServerConfig(home=tmp_path / "mlflow", port=_port()))
    try:
        tracker = Tracker(url, "ui-check")
        parent = tracker.start_sweep("nb101-sweep", "k", {"spaces": "A2"})
        children = []
        for method, regret in (("RS", 0.031), ("GS", 0.012)):
            children.append(
                tracker.log_unit(
                    parent,
                    f"u-{method}",
                    f"A2/{method}/seed0",
                    params={"space": "A2", "method": method, "seed": 0},
                    metrics={"final_regret": regret},
                )
            )
        tracker.finish_sweep(parent, {"units": 2})
        exp = tracker.experiment_id
        runs_dom = _render(f"{url}/#/experiments/{exp}/runs", tmp_path / "runs.png", tmp_path)
        assert "nb101-sweep" in runs_dom  # the parent run, children nested under it
        query = urllib.parse.urlencode({"runs": json.dumps(children), "experiments": json.dumps([exp])})
        compare_dom = _render(f"{url}/#/compare-runs?{query}", tmp_path / "compare.png", tmp_path)
        for text in ("A2/RS/seed0", "A2/GS/seed0", "final_regret", "method", "0.031", "0.012"):
            assert text in compare_dom, text
        assert (tmp_path / "runs.png").stat().st_size > 20_000
        assert (tmp_path / "compare.png").stat().st_size > 20_000
        assert MlflowClient(url).get_run(children[0]).data.params["method"] == "RS"
    finally:
        stop(tmp_path / "mlflow")
