"""Where runs are logged, one rule for every job, the queue and `python -m stats`:

1. the `--tracking-uri` flag (a job's config key `tracking_uri`), else
2. `MLFLOW_TRACKING_URI` (MLflow's own convention, and how `ray job submit --runtime-env-json`
   passes it to a cluster), else
3. the project's local tracking server (`mlflow_server.server`), started if it is not running.

The chosen URI is checked before any work: a server that does not answer within `TIMEOUT_S`
(MLflow's client would retry for minutes), refuses the credentials, or a SQLite file whose
folder does not exist, is a `TrackingUnreachable` naming the URI. A dry run resolves without
side effects: no server is started, and a store that does not exist yet is reported as absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV = "MLFLOW_TRACKING_URI"
TIMEOUT_S = 10.0


class TrackingUnreachable(ConnectionError):
    """The tracking URI cannot be used: no answer, refused credentials, or a missing folder."""


@dataclass(frozen=True)
class Where:
    """A tracking URI and why it was chosen (`flag`, `environment` or `local server`)."""

    uri: str
    source: str

    def __str__(self) -> str:
        return f"{self.uri} (from {self.source})"


def choose(flag: str | None) -> Where:
    """The URI the rule picks, without starting or checking anything."""
    if flag:
        return Where(flag, "--tracking-uri")
    if os.environ.get(ENV):
        return Where(os.environ[ENV], ENV)
    from mlflow_server.server import ServerConfig

    return Where(ServerConfig().url, "the project's local server")


def resolve(flag: str | None, timeout: float = TIMEOUT_S) -> Where:
    """The URI to log to, checked; the local server is started when the rule falls back to it."""
    where = choose(flag)
    if where.source == "the project's local server":
        from mlflow_server.server import start

        try:
            return Where(start(), where.source)
        except RuntimeError as err:
            raise TrackingUnreachable(f"could not start the local tracking server: {err}") from None
    check(where.uri, timeout)
    return where


def peek(flag: str | None, timeout: float = TIMEOUT_S) -> Where | None:
    """For a dry run: the URI when it already holds a store that answers, else None. Starts no
    server and creates no database."""
    where = choose(flag)
    sqlite = _sqlite_file(where.uri)
    if sqlite is not None:
        return where if sqlite.is_file() else None
    if where.uri.startswith("file:") or "://" not in where.uri:
        folder = Path(where.uri.removeprefix("file://").removeprefix("file:"))
        return where if folder.is_dir() else None
    if where.source == "the project's local server":
        from mlflow_server.server import healthy

        return where if healthy(where.uri) else None
    check(where.uri, timeout)
    return where


def check(uri: str, timeout: float = TIMEOUT_S) -> None:
    """Raise TrackingUnreachable unless `uri` can be used now (one request, at most `timeout` s)."""
    sqlite = _sqlite_file(uri)
    if sqlite is not None:
        if not sqlite.parent.is_dir():
            raise TrackingUnreachable(f"tracking URI {uri}: folder {sqlite.parent} does not exist")
        return
    if uri.startswith(("http://", "https://")):
        _ask_server(uri, timeout)


def _sqlite_file(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def _ask_server(uri: str, timeout: float) -> None:
    """One MLflow API request with the client's credentials, no retries."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        response = http_request(
            get_default_host_creds(uri),
            "/api/2.0/mlflow/experiments/search",
            "GET",
            max_retries=0,
            timeout=timeout,
            raise_on_status=False,
            params={"max_results": 1},
        )
    except Exception as err:  # connection refused, timeout, DNS, TLS: all mean "not usable"
        raise TrackingUnreachable(
            f"no MLflow tracking server answers at {uri} ({_reason(err, timeout)}); "
            "start one (make mlflow-start) or pass another --tracking-uri / MLFLOW_TRACKING_URI"
        ) from None
    if response.status_code in (401, 403):
        raise TrackingUnreachable(
            f"the tracking server at {uri} refused the credentials (HTTP {response.status_code}): "
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    if response.status_code >= 400:
        raise TrackingUnreachable(
            f"{uri} answered HTTP {response.status_code} to an MLflow API request: not a tracking server?"
        )


def _reason(err: Exception, timeout: float) -> str:
    """The root cause of a failed request in a few words."""
    text = str(err).lower()
    for words, reason in (
        (("refused",), "connection refused"),
        (("timed out", "timeout"), f"no answer within {timeout:.0f} s"),
        (("name or service not known", "nodename nor servname", "failed to resolve"), "unknown host"),
        (("ssl", "certificate"), "TLS error"),
    ):
        if any(w in text for w in words):
            return reason
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
