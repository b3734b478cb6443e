"""MLflow conventions every sweep follows: one parent run per sweep, one child run per unit.

A unit (a search seed, a supernet training, ...) is identified by a stable key, the hash of
its resolved config, stored as the tag `sweeps.unit_key`. Before running a unit the scheduler
asks `finished_units()` (one batched query) and skips keys that already have a FINISHED run.
A unit's run is written in one go at its end (params, metrics and artifacts in batches, then
FINISHED); leftovers of an interrupted attempt (a run of the same key that never finished)
are deleted first, so every unit appears exactly once.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from cluster.units import UnitResult

# Every tag the project writes, in one place.
UNIT_KEY = "sweeps.unit_key"  # a unit's stable key: how finished work is found again
SWEEP_KEY = "sweeps.sweep_key"  # a sweep's key: a re-submitted sweep reopens its parent run
KIND = "sweeps.kind"  # 'sweep' (parent run) or 'unit' (child run)
QUEUE_JOB = "sweeps.queue_job"  # the queued job a sweep ran for (cluster.queue)
ERROR = "sweeps.error"  # why a sweep failed or was killed
PARENT = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
QUEUE_JOB_VARIABLE = "SWEEPS_QUEUE_JOB_ID"  # set by the queue for the job it starts
_MAX_PARAM = 6000


def _params(values: dict) -> list[Param]:
    return [Param(k, str(v)[:_MAX_PARAM]) for k, v in sorted(values.items())]


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def now_ms() -> int:
    """Wall-clock time in milliseconds, MLflow's timestamp unit."""
    return int(time.time() * 1000)


def _metrics(values: dict, step: int = 0) -> list[Metric]:
    """Values as metrics stamped with the wall clock (None is left out)."""
    ts = now_ms()
    return [Metric(k, float(v), ts, step) for k, v in sorted(values.items()) if v is not None]


PATIENCE_VARIABLE = "SWEEPS_TRACKING_PATIENCE_S"  # seconds a call waits for the server (600)


class Patient:
    """An MlflowClient whose calls wait out an unreachable tracking server (restarted, a network
    blip): each call is retried after 1, 2, 4 ... 30 s, every wait printed to the job's log, for at
    most $SWEEPS_TRACKING_PATIENCE_S seconds (default 600); then the error is raised. MLflow's own
    silent HTTP retries are cut to 2 (unless MLFLOW_HTTP_REQUEST_MAX_RETRIES says otherwise)."""

    def __init__(self, client: MlflowClient):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        self._client = client

    def __getattr__(self, name: str):
        call = getattr(self._client, name)
        if not callable(call):
            return call

        def patiently(*args, **kwargs):
            budget = float(os.environ.get(PATIENCE_VARIABLE, "600"))
            start, wait = time.monotonic(), 1.0
            while True:
                try:
                    return call(*args, **kwargs)
                except Exception as err:
                    spent = time.monotonic() - start
                    if not _unreachable(err) or spent + wait > budget:
                        raise
                    print(
                        f"tracking server {self._client.tracking_uri} unreachable ({str(err)[:200]}): "
                        f"{name} retried in {wait:.0f} s ({spent:.0f} s of at most {budget:.0f} s)",
                        flush=True,
                    )
                    time.sleep(wait)
                    wait = min(2 * wait, 30.0)

        return patiently


def _unreachable(err: Exception) -> bool:
    """A refused or dropped connection, a timeout, or the server (or its proxy) saying it is down."""
    import re

    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(err, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    if not isinstance(err, MlflowException):
        return False
    text = str(err)
    down = ("Connection refused", "Connection reset", "Connection aborted", "timed out", "Max retries")
    busy = re.search(r"error code (429|5\d\d) ", text)  # the server answered: overloaded or failing
    return bool(busy) or err.get_http_status_code() in (429, 503) or any(d in text for d in down)


class Tracker:
    """Thin layer over MlflowClient for sweeps: works with a server URI or a `file:` store."""

    def __init__(self, tracking_uri: str, experiment: str):
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # clean job logs:
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # no link per run
        if tracking_uri.startswith("file:"):  # MLflow 3 keeps file stores behind an opt-in
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.tracking_uri = tracking_uri
        self.client = Patient(MlflowClient(tracking_uri))  # waits out a restarting server
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        self.experiment = experiment

    # ---- sweeps ------------------------------------------------------------------------
    def start_sweep(self, name: str, key: str, params: dict, tags: dict | None = None) -> str:
        """The parent run of a sweep: reused when the same sweep (same key) is re-submitted."""
        queued = {QUEUE_JOB: os.environ[QUEUE_JOB_VARIABLE]} if QUEUE_JOB_VARIABLE in os.environ else {}
        run_id = self.find_sweep(key)
        if run_id:
            self.client.update_run(run_id, status="RUNNING")
            if queued:  # the queued job now running this sweep
                self.set_tags(run_id, queued)
            return run_id
        run = self.client.create_run(
            self.experiment_id, run_name=name, tags={SWEEP_KEY: key, KIND: "sweep", **queued, **(tags or {})}
        )
        self.client.log_batch(run.info.run_id, params=_params(params))
        return run.info.run_id

    def find_sweep(self, key: str) -> str | None:
        """The parent run of the sweep with this key, if one was started before."""
        runs = self.client.search_runs(
            [self.experiment_id], f"tags.`{SWEEP_KEY}` = '{key}'", max_results=1, order_by=["start_time DESC"]
        )
        return runs[0].info.run_id if runs else None

    def finish_sweep(self, run_id: str, metrics: dict, files: list | None = None, status="FINISHED") -> None:
        self.client.log_batch(run_id, metrics=_metrics(metrics))
        for path in files or []:
            self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, status)

    # ---- units -------------------------------------------------------------------------
    def finished_units(self, parent_run_id: str | None = None) -> dict[str, str]:
        """unit key -> run id of every FINISHED unit run (of a parent, or of the experiment)."""
        query = f"tags.`{KIND}` = 'unit' and attributes.status = 'FINISHED'"
        if parent_run_id:
            query += f" and tags.`{PARENT}` = '{parent_run_id}'"
        return {run.data.tags[UNIT_KEY]: run.info.run_id for run in self._all_runs(query)}

    def _all_runs(self, query: str):
        """Every live run of the experiment matching `query`, page after page."""
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], query, max_results=10_000, page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    def _drop_unfinished(self, key: str) -> int:
        stale = self.client.search_runs(
            [self.experiment_id], f"tags.`{UNIT_KEY}` = '{key}' and attributes.status != 'FINISHED'"
        )
        for run in stale:
            self.client.delete_run(run.info.run_id)
        return len(stale)

    def log_unit(
        self,
        parent_run_id: str,
        key: str,
        name: str,
        params: dict,
        metrics: dict,
        tables: dict[str, pa.Table] | None = None,
        tags: dict | None = None,
    ) -> str:
        """Write one finished unit as a child run: params/metrics batched, tables as Parquet."""
        self._drop_unfinished(key)
        run = self.client.create_run(
            self.experiment_id,
            run_name=name,
            tags={PARENT: parent_run_id, UNIT_KEY: key, KIND: "unit", **(tags or {})},
        )
        run_id = run.info.run_id
        self.client.log_batch(run_id, metrics=_metrics(metrics), params=_params(params))
        if tables:
            with tempfile.TemporaryDirectory() as tmp:
                for filename, table in tables.items():
                    path = Path(tmp) / filename
                    pq.write_table(table, path, compression="zstd")
                    self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, "FINISHED")
        return run_id

    def prune_duplicates(self, parent_run_id: str, kept: dict[str, str]) -> int:
        """Delete the unit runs of a sweep that duplicate the one it used (`kept`: key -> run id).

        A driver killed mid-write can leave a run behind that lands after the resumed sweep
        cleaned up (a request still queued at the server, a client retry); once the sweep has
        its results, every other run of the same key under this parent is a duplicate.
        Runs of other sweeps are never touched.
        """
        query = f"tags.`{KIND}` = 'unit' and tags.`{PARENT}` = '{parent_run_id}'"
        stale = [
            run.info.run_id
            for run in self._all_runs(query)
            if run.data.tags.get(UNIT_KEY) in kept and kept[run.data.tags[UNIT_KEY]] != run.info.run_id
        ]
        for run_id in stale:
            self.client.delete_run(run_id)
        return len(stale)

    # ---- long units that checkpoint (supernet training) --------------------------------
    def open_unit(
        self, parent_run_id: str, key: str, name: str, params: dict, tags: dict | None = None
    ) -> str:
        """The run of a resumable unit: an unfinished run of the same key is reopened (its
        checkpoints are where the unit resumes from), else a new run is created."""
        runs = self.client.search_runs(
            [self.experiment_id],
            f"tags.`{UNIT_KEY}` = '{key}' and attributes.status != 'FINISHED'",
            order_by=["start_time DESC"],
        )
        if runs:
            for stale in runs[1:]:
                self.client.delete_run(stale.info.run_id)
            self.client.update_run(runs[0].info.run_id, status="RUNNING")
            return runs[0].info.run_id
        run = self.client.create_run(
            self.experiment_id,
            run_name=name,
            tags={PARENT: parent_run_id, UNIT_KEY: key, KIND: "unit", **(tags or {})},
        )
        self.client.log_batch(run.info.run_id, params=_params(params))
        return run.info.run_id

    def save_blob(self, run_id: str, path: str, blob: bytes) -> None:
        """Store bytes as an artifact at `path` (same path: replaced), written atomically here."""
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(path).name
            local.write_bytes(blob)
            folder = str(Path(path).parent) if str(Path(path).parent) != "." else None
            self.client.log_artifact(run_id, str(local), folder)

    def load_blob(self, run_id: str, path: str) -> bytes | None:
        """An artifact's bytes, or None when the run has no such artifact."""
        folder = str(Path(path).parent) if str(Path(path).parent) != "." else None
        names = {f.path for f in self.client.list_artifacts(run_id, folder)}
        if path not in names:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            return Path(self.client.download_artifacts(run_id, path, tmp)).read_bytes()

    def close_unit(self, run_id: str, metrics: dict, tables: dict[str, pa.Table] | None = None) -> None:
        """Final metrics and tables of a resumable unit, then FINISHED."""
        self.client.log_batch(run_id, metrics=_metrics(metrics))
        for filename, table in (tables or {}).items():
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / filename
                pq.write_table(table, path, compression="zstd")
                self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, "FINISHED")

    # ---- reading runs back -------------------------------------------------------------
    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of every metric of a run."""
        return dict(self.client.get_run(run_id).data.metrics)

    def read_result(self, key: str, run_id: str, tables: tuple[str, ...] = ()) -> UnitResult:
        """A unit finished in an earlier run: its metrics and the named Parquet artifacts."""
        loaded = {name: self.load_table(run_id, name) for name in tables}
        return UnitResult(key, run_id, self.run_metrics(run_id), loaded, reused=True)

    # ---- small writes ------------------------------------------------------------------
    def set_tags(self, run_id: str, tags: dict) -> None:
        for name, value in tags.items():
            self.client.set_tag(run_id, name, str(value)[:_MAX_PARAM])

    def log_metrics(self, run_id: str, metrics: dict, step: int = 0) -> None:
        """Summary or step metrics in one batch, stamped with the wall clock."""
        self.client.log_batch(run_id, metrics=_metrics(metrics, step))

    def log_steps(self, run_id: str, records: list[dict], step: str = "epoch") -> None:
        """Training curves: each record's numbers as metrics at step `record[step]`, one batch."""
        batch = [
            m
            for r in records
            for m in _metrics({k: v for k, v in r.items() if k != step and _finite(v)}, int(r[step]))
        ]
        for start in range(0, len(batch), 1000):  # MLflow's batch limit
            self.client.log_batch(run_id, metrics=batch[start : start + 1000])

    def log_curve(self, run_id: str, steps, series: dict, max_points: int = 1000) -> int:
        """Curves against a step axis (e.g. regret and simulated time against evaluation index),
        as step metrics the UI can overlay; at most `max_points` points, always keeping the first
        and the last. Returns the points logged."""
        import numpy as np

        steps = np.asarray(steps)
        columns = {name: np.asarray(values, dtype=float) for name, values in series.items()}
        keep = np.unique(np.linspace(0, len(steps) - 1, min(max_points, len(steps))).round().astype(int))
        records = [{"_step": int(steps[i])} | {k: v[i] for k, v in columns.items()} for i in keep]
        self.log_steps(run_id, records, "_step")
        return len(keep)

    def set_status(self, run_id: str, status: str, error: str | None = None) -> None:
        """End a run as FINISHED, FAILED or KILLED (with the reason, when there is one)."""
        if error:
            self.set_tags(run_id, {ERROR: error})
        self.client.set_terminated(run_id, status)

    def load_table(self, run_id: str, filename: str) -> pa.Table:
        """A Parquet artifact of a run, read back."""
        with tempfile.TemporaryDirectory() as tmp:
            path = self.client.download_artifacts(run_id, filename, tmp)
            return pq.read_table(path)


def _client(tracking_uri: str) -> MlflowClient:
    if tracking_uri.startswith("file:"):  # MLflow 3 keeps file stores behind an opt-in
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri)


class TrackingServer:
    """What spans experiments: the job queue finds a queued job's sweep by its tag, wherever the
    job logged it, and marks it KILLED when the job is cancelled."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri
        self.client = _client(tracking_uri)

    def find_tagged(self, tag: str, value: str):
        """The newest run with `tag` = `value` in any experiment, or None."""
        ids = [e.experiment_id for e in self.client.search_experiments()]
        if not ids:
            return None
        runs = self.client.search_runs(
            ids, f"tags.`{tag}` = '{value}'", max_results=1, order_by=["start_time DESC"]
        )
        return runs[0] if runs else None

    def kill(self, run) -> int:
        """Mark a sweep's parent run and its still-running child runs KILLED; how many."""
        children = self.client.search_runs(
            [run.info.experiment_id],
            f"tags.`{PARENT}` = '{run.info.run_id}' and attributes.status = 'RUNNING'",
        )
        for each in [*children, run]:
            self.client.set_terminated(each.info.run_id, "KILLED")
        return len(children) + 1

    def text_artifacts(self, run_id: str, suffix: str = ".md") -> dict[str, str]:
        """The run's top-level artifacts ending in `suffix`, as text (a sweep's report tables)."""
        out = {}
        for artifact in self.client.list_artifacts(run_id):
            if artifact.path.endswith(suffix):
                with tempfile.TemporaryDirectory() as tmp:
                    local = self.client.download_artifacts(run_id, artifact.path, tmp)
                    out[artifact.path] = Path(local).read_text()
        return out
