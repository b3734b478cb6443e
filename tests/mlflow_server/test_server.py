"""The tracking server script: starts on 127.0.0.1 with SQLite, answers /health, logs, stops."""

from __future__ import annotations

import socket

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


def test_server_lifecycle(tmp_path):
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
        assert list((tmp_path / "artifacts").rglob("note.txt"))
        assert not _huey_consumers(status(tmp_path)["pid"])  # no idle job consumers per server
    finally:
        assert stop(tmp_path)
    assert not healthy(url)
    assert status(tmp_path) == {"running": False}
