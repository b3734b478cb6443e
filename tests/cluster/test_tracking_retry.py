"""cluster/tracking.py: Patient, the client that waits out an unreachable tracking server, with a
bounded back-off that it reports; other errors go through at once."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from cluster.tracking import PATIENCE_VARIABLE, Patient

EXPERIMENT = {"experiment_id": "7", "name": "late", "artifact_location": "x", "lifecycle_stage": "active"}


class _Stub(BaseHTTPRequestHandler):
    """MLflow's get-experiment-by-name: 'late' exists, anything else does not."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        if "experiment_name=late" in self.path:
            status, body = 200, {"experiment": EXPERIMENT}
        else:
            status, body = 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such experiment"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args):
        pass


@pytest.fixture
def late_server(free_ports):
    """A port where a stub tracking server starts listening 2.5 s after the test begins."""
    (port,) = free_ports(1)
    servers = []

    def start():
        time.sleep(2.5)
        server = ThreadingHTTPServer(("127.0.0.1", port), _Stub)
        servers.append(server)
        server.serve_forever()

    threading.Thread(target=start, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    for server in servers:
        server.shutdown()


@pytest.fixture(autouse=True)
def _no_silent_retries(monkeypatch):
    """MLflow's own HTTP retries off: every failure reaches Patient (by default 2 are left)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


def test_a_call_waits_for_the_server_and_says_so(late_server, monkeypatch, capsys):
    monkeypatch.setenv(PATIENCE_VARIABLE, "60")
    client = Patient(MlflowClient(late_server))
    start = time.monotonic()
    found = client.get_experiment_by_name("late")
    waited = time.monotonic() - start
    assert found.experiment_id == "7" and 2.5 <= waited < 20
    waits = [line for line in capsys.readouterr().out.splitlines() if "unreachable" in line]
    assert waits and "get_experiment_by_name retried in 1 s" in waits[0] and "at most 60 s" in waits[0]
    assert "retried in 2 s" in waits[1]  # the back-off doubles


def test_the_wait_is_bounded_and_other_errors_are_not_retried(late_server, monkeypatch, capsys):
    monkeypatch.setenv(PATIENCE_VARIABLE, "1.5")
    client = Patient(MlflowClient(late_server))
    with pytest.raises(MlflowException, match="Connection refused"):
        client.get_experiment_by_name("late")  # the server is not up within 1.5 s
    assert capsys.readouterr().out.count("unreachable") == 1
    time.sleep(3)  # the server is up now
    monkeypatch.setenv(PATIENCE_VARIABLE, "60")
    assert client.get_experiment_by_name("absent") is None  # a 404: an answer, not an outage
    assert "unreachable" not in capsys.readouterr().out
    assert client.tracking_uri == late_server  # attributes pass through


class _RacingStore:
    """A client over a file store whose first search meets a metric file another process has
    created and not yet written (MLflow's error for it), and whose `broken` call always fails."""

    tracking_uri = "file:/somewhere/mlruns"

    def __init__(self):
        self.searches = 0

    def search_runs(self, *_args):
        self.searches += 1
        if self.searches == 1:
            raise ValueError("Metric 'sim_time' is malformed. No data found.")
        return ["run"]

    def broken(self):
        raise ValueError("a bad argument")


def test_a_file_store_read_mid_write_is_retried_other_value_errors_are_not(capsys):
    store = _RacingStore()
    client = Patient(store)
    assert client.search_runs(["1"]) == ["run"] and store.searches == 2
    assert "read while a metric was being written" in capsys.readouterr().out
    with pytest.raises(ValueError, match="a bad argument"):
        client.broken()
    assert not capsys.readouterr().out
