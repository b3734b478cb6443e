"""`python -m mlflow_server {start,stop,status}`: the tracking server of the sweeps."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlflow_server.server import DEFAULT_HOME, DEFAULT_HOST, DEFAULT_PORT, ServerConfig, start, status, stop


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlflow_server", description=__doc__)
    p.add_argument("command", choices=["start", "stop", "status"])
    p.add_argument("--home", type=Path, default=DEFAULT_HOME, help="folder for the database, artifacts, log")
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="bind address (default 127.0.0.1: this machine only); any other needs users (basic auth)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument(
        "--backend-store-uri", default=None, help="default sqlite:///HOME/mlflow.db; or postgresql://..."
    )
    p.add_argument("--artifacts-destination", default=None, help="default HOME/artifacts")
    p.add_argument("--auth", action="store_true", help="basic auth on loopback too")
    p.add_argument("--admin-username", default="admin", help="the admin user made on the first start")
    p.add_argument(
        "--admin-password-file",
        default=None,
        help="file (mode 0600) whose first line is the admin password; default $MLFLOW_AUTH_ADMIN_PASSWORD",
    )
    args = p.parse_args(argv)
    if args.command == "start":
        config = ServerConfig(
            args.home,
            args.host,
            args.port,
            args.backend_store_uri,
            args.artifacts_destination,
            args.auth,
            args.admin_username,
            args.admin_password_file,
        )
        url = start(config)
        auth = "no auth: this machine only"
        if config.authenticated:
            auth = f"basic auth, admin user {config.admin_username!r}"
        print(f"MLflow tracking server: {url} (UI in a browser; backend {config.backend()}; {auth})")
    elif args.command == "stop":
        print("stopped" if stop(args.home) else "no server recorded as running")
    else:
        print(json.dumps(status(args.home), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
