"""The tracking server script: starts on 127.0.0.1 with SQLite, answers /health, logs, stops; its
home, database, log, state and the artifacts it writes are its owner's only."""

from __future__ import annotations

import os
import socket
import stat

from mlflow.tracking import MlflowClient

from mlflow_server.server import ServerConfig, healthy, start, status, stop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _huey_consumers(pid: int) -> list[str]:
    """Command lines of MLflow's Huey job consumers among the server's descendants."""
    import psutil

    children = psutil.Process(pid).children(recursive=True)
    return [" ".join(c.cmdline()) for c in children if "huey" in " ".join(c.cmdline())]


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_server_lifecycle(tmp_path):
    tmp_path.chmod(0o755)  # a home and a database made before the files were private
    (tmp_path / "mlflow.db").touch(mode=0o644)
    config = ServerConfig(home=tmp_path, port=_free_port())
    url = start(config)
    try:
        assert url == f"http://127.0.0.1:{config.port}" and healthy(url)
        assert status(tmp_path)["running"] and (tmp_path / "mlflow.db").exists()
        assert start(config) == url  # already running: reused, not started twice
        client = MlflowClient(url)
        exp = client.create_experiment("smoke")
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "m", 1.5)
        client.log_text(run.info.run_id, "hello", "note.txt")  # artifacts go through the server
        assert client.get_run(run.info.run_id).data.metrics["m"] == 1.5
        (note,) = (tmp_path / "artifacts").rglob("note.txt")
        assert _mode(note) == 0o600  # written by the server: owner only, like every folder to it
        folders = [p for p in note.parents if tmp_path in p.parents or p == tmp_path]
        assert {str(p): _mode(p) for p in folders} == {str(p): 0o700 for p in folders}
        private = ("mlflow.db", "server.log", "server.json")
        assert {name: _mode(tmp_path / name) for name in private} == dict.fromkeys(private, 0o600)
        assert not _huey_consumers(status(tmp_path)["pid"])  # no idle job consumers per server
    finally:
        assert stop(tmp_path)
    assert not healthy(url)
    assert status(tmp_path) == {"running": False}


def test_stop_never_signals_a_process_that_reused_the_servers_pid(tmp_path):
    """A state file outliving its server (a crash, a reboot) names a pid another process may hold
    now: stop() leaves that process alone and forgets the state."""
    import json
    import subprocess
    import sys

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        state = {"pid": other.pid, "started": 1.0, "url": "http://127.0.0.1:9"}  # not its start time
        (tmp_path / "server.json").write_text(json.dumps(state))
        assert stop(tmp_path) is False
        assert other.poll() is None  # still running: never signalled
        assert not (tmp_path / "server.json").exists()
    finally:
        other.kill()
        other.wait()
