"""Start, check and stop the MLflow tracking server the sweeps log to.

Defaults: SQLite backend `mlruns/mlflow.db` and artifacts under `mlruns/artifacts` (served by
the server, so workers on other nodes can log them), bound to 127.0.0.1:5000. A PostgreSQL
backend is one flag away (`--backend-store-uri postgresql://...`). The server runs detached;
its pid, address and log file are kept in `mlruns/server.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from core.paths import REPO_ROOT

DEFAULT_HOME = REPO_ROOT / "mlruns"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
JOB_EXECUTION = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"


@dataclass
class ServerConfig:
    home: Path = DEFAULT_HOME
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    backend_store_uri: str | None = None  # default sqlite:///<home>/mlflow.db
    artifacts_destination: str | None = None  # default <home>/artifacts

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def backend(self) -> str:
        return self.backend_store_uri or f"sqlite:///{(Path(self.home) / 'mlflow.db').resolve()}"

    def artifacts(self) -> str:
        return self.artifacts_destination or str((Path(self.home) / "artifacts").resolve())


def healthy(url: str, timeout: float = 2.0) -> bool:
    """True when the server at `url` answers /health with OK."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.status == 200 and response.read().strip() == b"OK"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _state_file(home: Path) -> Path:
    return Path(home) / "server.json"


def start(config: ServerConfig | None = None, wait: float = 120.0) -> str:
    """Start the server unless one already answers at the configured address; returns its URL."""
    config = config or ServerConfig()
    if healthy(config.url):
        return config.url
    if config.backend().startswith("postgresql"):
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            raise RuntimeError("a PostgreSQL backend needs psycopg2: pip install psycopg2-binary") from None
    home = Path(config.home)
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "server.log"
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", config.backend(),
        "--artifacts-destination", config.artifacts(),
        "--serve-artifacts",
        "--host", config.host,
        "--port", str(config.port),
        "--workers", "1",
    ]  # fmt: skip
    # MLflow 3 starts ~8 Huey job consumers per server for its GenAI jobs; sweeps use none of them
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": os.environ.get(JOB_EXECUTION, "false")}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    state = {"pid": proc.pid, "url": config.url, "log": str(log_path), **asdict(config)}
    _state_file(home).write_text(json.dumps(state, default=str, indent=1))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if healthy(config.url):
            return config.url
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"MLflow server exited with code {proc.returncode}; log {log_path}:\n{tail}")
        time.sleep(1.0)
    raise RuntimeError(
        f"MLflow server did not answer {config.url}/health within {wait:.0f} s; see {log_path}"
    )


def stop(home: Path = DEFAULT_HOME) -> bool:
    """Stop the server this project started (by its recorded pid); False when none was running."""
    path = _state_file(home)
    if not path.exists():
        return False
    state = json.loads(path.read_text())
    try:
        os.killpg(state["pid"], signal.SIGTERM)
    except ProcessLookupError:
        path.unlink()
        return False
    for _ in range(50):
        with contextlib.suppress(ChildProcessError):  # started by this process (tests): reap it, or
            os.waitpid(state["pid"], os.WNOHANG)  # it stays a zombie that os.kill(pid, 0) still finds
        try:
            os.kill(state["pid"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    path.unlink(missing_ok=True)
    return True


def status(home: Path = DEFAULT_HOME) -> dict:
    """The recorded server state and whether it answers its health check."""
    path = _state_file(home)
    if not path.exists():
        return {"running": False}
    state = json.loads(path.read_text())
    return state | {"running": healthy(state["url"])}
