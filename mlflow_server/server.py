"""Start, check and stop the MLflow tracking server the sweeps log to.

Defaults: SQLite backend `mlruns/mlflow.db` and artifacts under `mlruns/artifacts` (served by
the server, so workers on other nodes can log them), bound to 127.0.0.1:5000. A PostgreSQL
backend is one flag away (`--backend-store-uri postgresql://...`). The server runs detached;
its pid, address and log file are kept in `mlruns/server.json`.

Private by default, authenticated when shared. On loopback only this machine reaches it. Bound
to any other address (`--host 0.0.0.0`), or with `--auth`, it runs MLflow's basic-auth app: every
request but /health needs a user. The admin user is made on the first start, named by
`admin_username` (or MLFLOW_AUTH_ADMIN_USERNAME), its password read from MLFLOW_AUTH_ADMIN_PASSWORD
or from a file of the operator's (`--admin-password-file`, mode 0600): never from the command
line, never written by the project. The auth settings (`basic_auth.ini`), the user database
(`basic_auth.db`) and the Flask secret key (`flask_secret_key`, unless
MLFLOW_FLASK_SERVER_SECRET_KEY is set) live in the home. Clients authenticate the MLflow way:
MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN).

Files: the home is 0700; the database, log, state and settings are 0600; the server runs with
umask 077, so the artifacts and anything else it writes are its owner's only.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from core.paths import REPO_ROOT
from core.security import is_loopback, private_dir, private_file, write_private_text

DEFAULT_HOME = REPO_ROOT / "mlruns"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
JOB_EXECUTION = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
ADMIN_PASSWORD = "MLFLOW_AUTH_ADMIN_PASSWORD"  # MLflow's own variables
SECRET_KEY = "MLFLOW_FLASK_SERVER_SECRET_KEY"
AUTH_INI = """[mlflow]
default_permission = READ
database_uri = sqlite:///{database}
admin_username = {admin}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = {cache_ttl}
"""
# Checking a password (PBKDF2) costs about 1.2 s of CPU per request on a busy 2-core machine,
# 30x a whole request without auth; a checked password is trusted for this long instead (one
# worker: a password changed through the API takes effect at once, one changed in the database
# directly within the TTL).
AUTH_CACHE_TTL_S = 60


@dataclass
class ServerConfig:
    home: Path = DEFAULT_HOME
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    backend_store_uri: str | None = None  # default sqlite:///<home>/mlflow.db
    artifacts_destination: str | None = None  # default <home>/artifacts
    auth: bool = False  # basic auth on loopback too; any other host always has it
    admin_username: str = "admin"
    admin_password_file: str | None = None  # else MLFLOW_AUTH_ADMIN_PASSWORD

    @property
    def authenticated(self) -> bool:
        """Whether the server asks for a user: when told to, and whenever it is not loopback-only."""
        return self.auth or not is_loopback(self.host)

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


def _start_time(pid: int) -> float | None:
    """When process `pid` started (psutil), which tells a recorded server from a later process that
    reuses its pid; None when there is no such process."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return None


def admin_password(config: ServerConfig) -> str | None:
    """The admin password from MLFLOW_AUTH_ADMIN_PASSWORD, else from the config's password file
    (its first line), which must be readable by its owner only."""
    if os.environ.get(ADMIN_PASSWORD):
        return os.environ[ADMIN_PASSWORD]
    if not config.admin_password_file:
        return None
    path = Path(config.admin_password_file).expanduser()
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise RuntimeError(f"{path} (mode {mode:o}) holds a password others can read: chmod 600 {path}")
    text = path.read_text().strip()
    return text.splitlines()[0].strip() if text else None


def auth_environment(config: ServerConfig) -> dict[str, str]:
    """What the server process needs for basic auth: its settings file (written 0600 in the home),
    the Flask secret key, and the admin password when the admin user is still to be made."""
    home = Path(config.home).resolve()
    users = home / "basic_auth.db"
    settings = AUTH_INI.format(database=users, admin=config.admin_username, cache_ttl=AUTH_CACHE_TTL_S)
    ini = write_private_text(home / "basic_auth.ini", settings)
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(ini)}
    if not os.environ.get(SECRET_KEY):
        key = home / "flask_secret_key"
        if not key.exists() or not key.read_text().strip():
            write_private_text(key, secrets.token_hex(32))
        env[SECRET_KEY] = private_file(key).read_text().strip()
    password = admin_password(config)
    if password:
        env[ADMIN_PASSWORD] = password
    elif not users.exists():
        raise RuntimeError(
            f"an authenticated server needs the password of its admin user {config.admin_username!r} on "
            f"its first start: set {ADMIN_PASSWORD} or pass --admin-password-file FILE (mode 0600, "
            "outside the repository; at least 12 characters)"
        )
    private_file(users)
    return env


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def server_command(config: ServerConfig) -> list[str]:
    """The `mlflow server` command line for a config (no secret ever goes on it)."""
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", config.backend(),
        "--artifacts-destination", config.artifacts(),
        "--serve-artifacts",
        "--host", config.host,
        "--port", str(config.port),
        "--workers", "1",
    ]  # fmt: skip
    return cmd + (["--app-name", "basic-auth"] if config.authenticated else [])


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
    home = private_dir(config.home, tighten=True)
    # MLflow 3 starts ~8 Huey job consumers per server for its GenAI jobs; sweeps use none of them
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": os.environ.get(JOB_EXECUTION, "false")}
    if config.authenticated:
        env |= auth_environment(config)
    database = _sqlite_path(config.backend())
    if database:
        private_file(database)
    if "://" not in config.artifacts():
        private_dir(config.artifacts(), tighten=config.artifacts_destination is None)
    log_path = private_file(home / "server.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            server_command(config),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            umask=0o077,  # artifacts, journals, the user database: owner only
        )
    state = {
        "pid": proc.pid,
        "started": _start_time(proc.pid),
        "url": config.url,
        "log": str(log_path),
        **asdict(config),
    }
    write_private_text(_state_file(home), json.dumps(state, default=str, indent=1))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if healthy(config.url):
            return config.url
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"MLflow server exited with code {proc.returncode}; log {log_path}:\n{tail}")
        time.sleep(0.25)  # a refused connection costs nothing: a 1 s poll added ~0.5 s to every start
    raise RuntimeError(
        f"MLflow server did not answer {config.url}/health within {wait:.0f} s; see {log_path}"
    )


def stop(home: Path = DEFAULT_HOME) -> bool:
    """Stop the server this project started (by its recorded pid); False when none was running."""
    path = _state_file(home)
    if not path.exists():
        return False
    state = json.loads(path.read_text())
    if state.get("started") and _start_time(state["pid"]) != state["started"]:
        path.unlink()  # the server is gone and its pid is another process's now: never signal that
        return False
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
