"""An authenticated tracking server: anonymous and wrong-password requests refused, the configured
user accepted through MLflow's own client the way jobs, the queue and `python -m stats` reach it
(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD), the password never on a command line or in
a file the project writes, and any address beyond loopback implying authentication.

The live server binds 127.0.0.1 with `--auth` (tests keep their traffic and listeners on
loopback); that a non-loopback `--host` turns the same authentication on is checked on the
command line `start` runs.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import urllib.error
import urllib.request

import psutil
import pyarrow as pa
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from cluster.tracking import SWEEP_KEY, Tracker, TrackingServer
from mlflow_server.server import ADMIN_PASSWORD, ServerConfig, auth_environment, server_command, start, stop
from stats import cli

USER = "sweeps-admin"
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


@pytest.fixture(scope="module")
def server(tmp_path_factory, free_ports):
    """(config, password): a basic-auth server whose admin password comes from a 0600 file."""
    secret = tmp_path_factory.mktemp("secret") / "mlflow-admin"
    password = secrets.token_urlsafe(18)
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    home = tmp_path_factory.mktemp("mlflow-auth")
    config = ServerConfig(
        home=home, port=free_ports(1)[0], auth=True, admin_username=USER, admin_password_file=str(secret)
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(ADMIN_PASSWORD, raising=False)
        start(config)
    yield config, password
    stop(home)


def _status(url: str, user: str | None = None, password: str | None = None) -> int:
    headers = {}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture
def anonymous(monkeypatch):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_anonymous_and_wrong_password_refused(server, anonymous):
    config, password = server
    assert _status(config.url + "/health") == 200  # health checks need no user
    assert _status(config.url + SEARCH) == 401
    assert _status(config.url + SEARCH, USER, password + "x") == 401
    assert _status(config.url + SEARCH, "nobody", password) == 401
    assert _status(config.url + SEARCH, USER, password) == 200
    with pytest.raises(MlflowException, match="401|nauthorized"):
        MlflowClient(config.url).search_experiments()


def test_the_configured_user_works_for_jobs_the_queue_and_stats(server, anonymous, tmp_path, experiment):
    config, password = server
    anonymous.setenv("MLFLOW_TRACKING_USERNAME", USER)
    anonymous.setenv("MLFLOW_TRACKING_PASSWORD", password)
    tracker = Tracker(config.url, experiment)  # what every job logs through
    sweep = tracker.start_sweep("sweep", "key-1", {"kind": "readers"})
    table = pa.table({"x": [1, 2, 3]})
    for n, (reader, condition) in enumerate((r, c) for r in ("R0", "R1", "R2") for c in ("unaided", "aided")):
        params = {"reader": reader, "condition": condition}
        metrics = {"SE_pw": 0.5 + 0.1 * (condition == "aided") + 0.01 * n}
        tables = {"t.parquet": table} if n == 0 else None  # one artifact through the server
        tracker.log_unit(sweep, f"{reader}-{condition}", reader, params, metrics, tables=tables)
    tracker.finish_sweep(sweep, {"units": 6})
    assert tracker.load_table(tracker.finished_units(sweep)["R0-unaided"], "t.parquet").equals(table)
    queue_view = TrackingServer(config.url)  # what the queue uses to find and cancel a sweep
    assert queue_view.find_tagged(SWEEP_KEY, "key-1").info.run_id == sweep
    code = cli.main(["table", "readers", "--experiment", experiment, "--tracking-uri", config.url,
                     "--out", str(tmp_path / "tables")])  # fmt: skip
    assert code == 0 and (tmp_path / "tables" / "readers.md").exists()
    assert queue_view.kill(queue_view.find_tagged(SWEEP_KEY, "key-1")) == 1


def _server_processes(config: ServerConfig) -> list[psutil.Process]:
    root = psutil.Process(json.loads((config.home / "server.json").read_text())["pid"])
    return [root, *root.children(recursive=True)]


def test_the_password_is_on_no_command_line_and_in_no_file_of_the_server(server):
    config, password = server
    assert all(password not in " ".join(p.cmdline()) for p in _server_processes(config))
    written = [p for p in config.home.rglob("*") if p.is_file() and password.encode() in p.read_bytes()]
    assert not written, written
    ini = (config.home / "basic_auth.ini").read_text()
    assert f"admin_username = {USER}" in ini and "admin_password" not in ini
    assert oct(os.stat(config.home / "basic_auth.ini").st_mode & 0o777) == "0o600"
    assert oct(os.stat(config.home / "basic_auth.db").st_mode & 0o777) == "0o600"


def test_the_authenticated_server_listens_on_loopback_only(server):
    config, _ = server
    procs = _server_processes(config)
    ips = [c.laddr.ip for p in procs for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
    assert ips and all(ip.startswith("127.") for ip in ips), ips


def test_a_restart_needs_no_password_once_the_admin_exists(server, monkeypatch):
    config, _ = server
    monkeypatch.delenv(ADMIN_PASSWORD, raising=False)
    again = ServerConfig(home=config.home, port=config.port, auth=True, admin_username=USER)
    env = auth_environment(again)
    assert ADMIN_PASSWORD not in env and env["MLFLOW_AUTH_CONFIG_PATH"].endswith("basic_auth.ini")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "head.example.org"])
def test_any_host_beyond_loopback_runs_the_basic_auth_app(host):
    config = ServerConfig(host=host)
    assert config.authenticated
    assert server_command(config)[-2:] == ["--app-name", "basic-auth"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_is_open_unless_told(host):
    assert not ServerConfig(host=host).authenticated
    assert "--app-name" not in server_command(ServerConfig(host=host))
    assert ServerConfig(host=host, auth=True).authenticated


def test_a_first_start_without_a_password_is_refused(tmp_path, monkeypatch, free_ports):
    monkeypatch.delenv(ADMIN_PASSWORD, raising=False)
    config = ServerConfig(home=tmp_path, host="0.0.0.0", port=free_ports(1)[0])
    try:
        with pytest.raises(RuntimeError, match=ADMIN_PASSWORD):
            start(config)
        assert not (tmp_path / "server.json").exists()  # nothing was started
    finally:
        stop(tmp_path)  # a server started by a broken check is not left behind


def test_a_password_file_others_can_read_is_refused(tmp_path, monkeypatch, free_ports):
    monkeypatch.delenv(ADMIN_PASSWORD, raising=False)
    secret = tmp_path / "pw"
    secret.write_text("a-long-enough-password\n")
    secret.chmod(0o644)
    config = ServerConfig(
        home=tmp_path / "home", auth=True, port=free_ports(1)[0], admin_password_file=str(secret)
    )
    try:
        with pytest.raises(RuntimeError, match="chmod 600"):
            start(config)
    finally:
        stop(config.home)
