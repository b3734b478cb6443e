"""MLflow conventions every sweep follows: one parent run per sweep, one child run per unit.

A unit (a search seed, a supernet training, ...) is identified by a stable key, the hash of
its resolved config, stored as the tag `sweeps.unit_key`. Before running a unit the scheduler
asks `finished_units()` (one batched query) and skips keys that already have a FINISHED run.
A unit's run is written in one go at its end (params, metrics and artifacts in batches, then
FINISHED), dated from when its work started (`work_window`); leftovers of an interrupted attempt
(a run of the same key that never finished) are deleted first, so every unit appears exactly once.
A finished unit is found by its key in any experiment of the server: a baselines job followed by
a sweep with the same settings re-runs nothing.

Every run says which code made it (`provenance`: git commit and dirty flag, entry point, user,
project version, Ray cluster); a sweep's run holds its resolved config (`config.yaml`), its
report as the description, its figures as images, and the data sets it read as run inputs.
Trainers' runs get MLflow's system metrics (`system_metrics`) and their final models as MLflow
models (`log_model`: a torch.export program, or a pyfunc loaded from code for a network that
torch.export cannot capture, `CodeModel`), registered under a name when asked.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import getpass
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param
from mlflow.tracking import MlflowClient

from cluster.units import UnitResult
from core.paths import REPO_ROOT

# Every tag the project writes, in one place.
UNIT_KEY = "sweeps.unit_key"  # a unit's stable key: how finished work is found again
SWEEP_KEY = "sweeps.sweep_key"  # a sweep's key: a re-submitted sweep reopens its parent run
KIND = "sweeps.kind"  # 'sweep' (parent run) or 'unit' (child run)
QUEUE_JOB = "sweeps.queue_job"  # the queued job a sweep ran for (cluster.queue)
ERROR = "sweeps.error"  # why a sweep failed or was killed
PARENT = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
DESCRIPTION = "mlflow.note.content"  # the run's description in the UI (Markdown)
GIT_COMMIT = "mlflow.source.git.commit"
SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
USER = "mlflow.user"
GIT_DIRTY = "sweeps.git_dirty"  # 'true' when the commit's tracked files had local changes
PROJECT_VERSION = "sweeps.project_version"
RAY_ADDRESS = "sweeps.ray_address"
PROVENANCE = (GIT_COMMIT, GIT_DIRTY, SOURCE_NAME, SOURCE_TYPE, USER, PROJECT_VERSION, RAY_ADDRESS)
QUEUE_JOB_VARIABLE = "SWEEPS_QUEUE_JOB_ID"  # set by the queue for the job it starts
# Where the code travels without .git (`ray job submit --working-dir`, the queue): its commit and
# dirty flag as the submitter saw them.
GIT_COMMIT_VARIABLE = "SWEEPS_GIT_COMMIT"
GIT_DIRTY_VARIABLE = "SWEEPS_GIT_DIRTY"
SYSTEM_METRICS_INTERVAL_VARIABLE = "SWEEPS_SYSTEM_METRICS_INTERVAL"  # seconds between samples
CONFIG_ARTIFACT = "config.yaml"
FIGURES = "figures"  # artifact folder of a sweep's figures
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_MAX_PARAM = 6000
_MAX_TAG = 8000  # MLflow's limit on a tag value


# ---- provenance ---------------------------------------------------------------------------
def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def git_state() -> tuple[str, str]:
    """(commit, dirty) of the code running: from git when the checkout has its .git, else from
    SWEEPS_GIT_COMMIT / SWEEPS_GIT_DIRTY (set by whoever uploaded the code), else 'unknown'."""
    commit = _git("rev-parse", "HEAD")
    if commit:
        status = _git("status", "--porcelain", "--untracked-files=no")
        return commit.strip(), "unknown" if status is None else str(bool(status.strip())).lower()
    return os.environ.get(GIT_COMMIT_VARIABLE, "unknown"), os.environ.get(GIT_DIRTY_VARIABLE, "unknown")


def project_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nas-sweeps")
    except PackageNotFoundError:
        return "unknown"


def ray_address() -> str:
    """The Ray cluster this process is part of (its GCS address), else the one it would join."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return ray.get_runtime_context().gcs_address
    return os.environ.get("RAY_ADDRESS") or "a private local instance (none started yet)"


def _source_name() -> str:
    entry = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if entry is None or not entry.name:
        return "python"
    return str(entry.relative_to(REPO_ROOT)) if entry.is_relative_to(REPO_ROOT) else str(entry)


@functools.cache
def _static_provenance() -> dict[str, str]:
    commit, dirty = git_state()
    return {
        GIT_COMMIT: commit,
        GIT_DIRTY: dirty,
        SOURCE_NAME: _source_name(),
        SOURCE_TYPE: "JOB",
        USER: os.environ.get("MLFLOW_TRACKING_USERNAME") or getpass.getuser(),
        PROJECT_VERSION: project_version(),
    }


def provenance() -> dict[str, str]:
    """The tags that say which code, run by whom, on which cluster, made a run."""
    return _static_provenance() | {RAY_ADDRESS: ray_address()}


# ---- when a unit's work happened ------------------------------------------------------------
_WORK_STARTED: contextvars.ContextVar[int | None] = contextvars.ContextVar("work_started", default=None)


@contextlib.contextmanager
def work_window(started_ms: int | None = None) -> Iterator[None]:
    """Inside this block, a unit run written in one go (`log_unit`) starts at `started_ms` (default:
    now, the block's start) rather than when it is logged."""
    token = _WORK_STARTED.set(started_ms if started_ms is not None else now_ms())
    try:
        yield
    finally:
        _WORK_STARTED.reset(token)


def timed(work: Callable) -> Callable:
    """`work` run inside a `work_window`: the unit it logs is dated from when it started."""

    @functools.wraps(work)
    def wrapper(*args, **kwargs):
        with work_window():
            return work(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class Timed:
    """A result computed in one process and logged in another, with when its work started."""

    value: object
    started_ms: int


def stamped(work: Callable) -> Callable:
    """`work` returning a `Timed` (for a work task whose result another process logs)."""

    @functools.wraps(work)
    def wrapper(*args, **kwargs):
        started = now_ms()
        return Timed(work(*args, **kwargs), started)

    return wrapper


# ---- data sets ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetRef:
    """A data set a run read: its name, content identity (digest) and where it came from (a path,
    or a description of embedded/generated data)."""

    name: str
    digest: str
    source: str
    context: str = "training"

    def entity(self) -> DatasetInput:
        import json

        local = "://" not in self.source and Path(self.source).exists()
        kind = "local" if local else "code"
        source = json.dumps({"uri": self.source} if local else {"tags": {"source": self.source}})
        dataset = Dataset(self.name, self.digest[:36], kind, source)
        return DatasetInput(dataset, [InputTag("mlflow.data.context", self.context)])


# ---- models torch.export cannot capture ----------------------------------------------------
@dataclass(frozen=True)
class CodeModel:
    """A model MLflow loads by running a code file (its "models from code"), for a network that
    torch.export cannot capture: `code` is the file defining the pyfunc (it ends with
    `mlflow.models.set_model(...)`) and `artifacts` the files it reads in `load_context` (name ->
    bytes, e.g. weights read back with torch.load(weights_only=True)). Nothing is pickled: loading
    runs the stored code file, which imports this project's packages (they must be installed, or a
    checkout on sys.path). The `signature` is given, not inferred: its shapes may be freer than the
    example's."""

    code: Path
    artifacts: dict[str, bytes]
    signature: object  # mlflow.models.ModelSignature
    requirements: tuple[str, ...] = ("torch", "numpy")  # distributions the code needs, pinned as here


def _requirements(*names: str) -> list[str]:
    """`name==version` of each installed distribution (local build tags dropped)."""
    from importlib.metadata import version

    return [f"{n}=={version(n).split('+')[0]}" for n in names]


def _project_requirement() -> list[str]:
    """This project's distribution, pinned, when it is installed (a code model imports it)."""
    found = project_version()
    return [] if found == "unknown" else [f"nas-sweeps=={found}"]


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Environment variables set for a block, restored after (MLflow's fluent API reads some)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _params(values: dict) -> list[Param]:
    return [Param(k, str(v)[:_MAX_PARAM]) for k, v in sorted(values.items())]


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def now_ms() -> int:
    """Wall-clock time in milliseconds, MLflow's timestamp unit."""
    return int(time.time() * 1000)


def _metrics(values: dict, step: int = 0, timestamp: int | None = None) -> list[Metric]:
    """Values as metrics stamped with the wall clock (or `timestamp`, ms); None is left out."""
    ts = now_ms() if timestamp is None else int(timestamp)
    return [Metric(k, float(v), ts, step) for k, v in sorted(values.items()) if v is not None]


STEP_TIME = "_time_ms"  # a step record's wall-clock time, when it was measured before being logged


def sweep_run_name(name: str, params: dict, key: str) -> str:
    """A parent run's name that tells sweeps apart: job, preset, spaces and a short key."""
    parts = [name]
    if params.get("preset"):
        parts.append(str(params["preset"]))
    spaces = params.get("spaces")
    if spaces:
        parts.append(",".join(map(str, spaces)) if isinstance(spaces, list | tuple) else str(spaces))
    return " ".join(parts + [key[:8]])


def _plain(values: dict) -> dict:
    """Values as YAML can hold them (paths and other objects as their text)."""
    import json

    return json.loads(json.dumps(values, default=str))


def _description(markdown: str) -> str:
    """A report as a run description, cut to MLflow's tag limit with a pointer to the whole."""
    if len(markdown) <= _MAX_TAG:
        return markdown
    note = "\n\n... (cut here: the whole report is among the run's artifacts)"
    return markdown[: _MAX_TAG - len(note)] + note


PATIENCE_VARIABLE = "SWEEPS_TRACKING_PATIENCE_S"  # seconds a call waits for the server (600)


class Patient:
    """An MlflowClient whose calls wait out an unreachable tracking server (restarted, a network
    blip) or a file store read mid-write: each call is retried after 1, 2, 4 ... 30 s, every wait
    printed to the job's log, for at most $SWEEPS_TRACKING_PATIENCE_S seconds (default 600); then
    the error is raised. MLflow's own silent HTTP retries are cut to 2 (unless
    MLFLOW_HTTP_REQUEST_MAX_RETRIES says otherwise)."""

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
                    spent, why = time.monotonic() - start, _transient(err)
                    if not why or spent + wait > budget:
                        raise
                    print(
                        f"tracking server {self._client.tracking_uri} {why} ({str(err)[:200]}): "
                        f"{name} retried in {wait:.0f} s ({spent:.0f} s of at most {budget:.0f} s)",
                        flush=True,
                    )
                    time.sleep(wait)
                    wait = min(2 * wait, 30.0)

        return patiently


def _transient(err: Exception) -> str | None:
    """Why a failed call is worth repeating, or None. Besides an unreachable server: MLflow's file
    store raises ValueError("Metric 'x' is malformed. No data found.") when it reads a metric file
    that another process has created but not yet written (a search while a unit logs)."""
    if _unreachable(err):
        return "unreachable"
    if isinstance(err, ValueError) and "is malformed. No data found" in str(err):
        return "read while a metric was being written"
    return None


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

    def __init__(self, tracking_uri: str, experiment: str, create: bool = True):
        """`create=False` (a dry run) reads only: a missing experiment is left missing."""
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # clean job logs:
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # no link per run
        if tracking_uri.startswith("file:"):  # MLflow 3 keeps file stores behind an opt-in
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.tracking_uri = tracking_uri
        self.client = Patient(MlflowClient(tracking_uri))  # waits out a restarting server
        found = self.client.get_experiment_by_name(experiment)
        if found:
            self.experiment_id = found.experiment_id
        else:
            self.experiment_id = self.client.create_experiment(experiment) if create else None
        self.experiment = experiment
        self._inherited: dict[str, dict] = {}  # parent run -> the provenance its children copy

    # ---- sweeps ------------------------------------------------------------------------
    def start_sweep(
        self,
        name: str,
        key: str,
        params: dict,
        tags: dict | None = None,
        datasets: tuple[DatasetRef, ...] = (),
    ) -> str:
        """The parent run of a sweep: reused when the same sweep (same key) is re-submitted. It
        carries the provenance of the code now running, the resolved config as `config.yaml` and
        the data sets as run inputs."""
        queued = {QUEUE_JOB: os.environ[QUEUE_JOB_VARIABLE]} if QUEUE_JOB_VARIABLE in os.environ else {}
        run_id = self.find_sweep(key)
        if run_id:
            self.client.update_run(run_id, status="RUNNING")
            self.set_tags(run_id, provenance() | queued)  # the code and queued job now running it
        else:
            all_tags = {SWEEP_KEY: key, KIND: "sweep", **provenance(), **queued, **(tags or {})}
            run_id = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags).info.run_id
            self.client.log_batch(run_id, params=_params(params))
        self.save_blob(run_id, CONFIG_ARTIFACT, yaml.safe_dump(_plain(params), sort_keys=True).encode())
        self.log_datasets(run_id, datasets)
        return run_id

    def log_datasets(self, run_id: str, datasets: tuple[DatasetRef, ...]) -> None:
        """Record data sets as the run's inputs (name, content digest, source, context)."""
        if datasets:
            self.client.log_inputs(run_id, datasets=[d.entity() for d in datasets])

    def find_sweep(self, key: str) -> str | None:
        """The parent run of the sweep with this key, if one was started before."""
        if self.experiment_id is None:  # a dry run before the experiment exists
            return None
        runs = self.client.search_runs(
            [self.experiment_id], f"tags.`{SWEEP_KEY}` = '{key}'", max_results=1, order_by=["start_time DESC"]
        )
        return runs[0].info.run_id if runs else None

    def finish_sweep(
        self,
        run_id: str,
        metrics: dict,
        files: list | None = None,
        status="FINISHED",
        description: str | None = None,
    ) -> None:
        """The sweep's summary metrics and report: figures as images (under `figures/`, and as
        image charts the UI shows beside the metrics), other files as artifacts, the report's
        Markdown as the run's description."""
        self.client.log_batch(run_id, metrics=_metrics(metrics))
        for path in map(Path, files or []):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                self.log_figure(run_id, path)
            else:
                self.client.log_artifact(run_id, str(path))
        self.set_tags(run_id, {RAY_ADDRESS: ray_address()})
        if description:
            self.client.set_tag(run_id, DESCRIPTION, _description(description))
        self.client.set_terminated(run_id, status)

    def log_figure(self, run_id: str, path: Path) -> None:
        """A saved figure: the file under `figures/`, and the image under its name for the UI."""
        from PIL import Image

        self.client.log_artifact(run_id, str(path), FIGURES)
        with Image.open(path) as image:
            self.client.log_image(run_id, image.convert("RGB"), key=path.stem, step=0)

    # ---- units -------------------------------------------------------------------------
    def finished_units(self, parent_run_id: str | None = None) -> dict[str, str]:
        """unit key -> run id of every FINISHED unit run: of a parent, or anywhere on the server
        (any experiment: a unit another job finished is reused); the newest run per key."""
        query = f"tags.`{KIND}` = 'unit' and attributes.status = 'FINISHED'"
        if parent_run_id:
            query += f" and tags.`{PARENT}` = '{parent_run_id}'"
            return {run.data.tags[UNIT_KEY]: run.info.run_id for run in self._all_runs(query)}
        found: dict[str, tuple[int, str]] = {}
        for run in self._all_runs(query, self._experiment_ids()):
            key, start = run.data.tags[UNIT_KEY], run.info.start_time or 0
            if key not in found or start > found[key][0]:
                found[key] = (start, run.info.run_id)
        return {key: run_id for key, (_, run_id) in found.items()}

    def _experiment_ids(self) -> list[str]:
        """Every live experiment of the server (page after page)."""
        ids, token = [], None
        while True:
            page = self.client.search_experiments(max_results=1000, page_token=token)
            ids += [e.experiment_id for e in page]
            token = page.token
            if not token:
                return ids

    def _all_runs(self, query: str, experiment_ids: list[str] | None = None):
        """Every live run matching `query` (of this experiment, or of those given), page after page;
        at most 100 experiments per request."""
        ids = [self.experiment_id] if experiment_ids is None else experiment_ids
        ids = [i for i in ids if i is not None]
        for first in range(0, len(ids), 100):
            token = None
            while True:
                page = self.client.search_runs(
                    ids[first : first + 100], query, max_results=10_000, page_token=token
                )
                yield from page
                token = page.token
                if not token:
                    break

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
        started_ms: int | None = None,
        ended_ms: int | None = None,
    ) -> str:
        """Write one finished unit as a child run: params/metrics batched, tables as Parquet.
        The run starts when its work started (`started_ms`, else the enclosing `work_window`'s
        start, else now) and ends when it ended (`ended_ms`, else now)."""
        self._drop_unfinished(key)
        started = started_ms if started_ms is not None else _WORK_STARTED.get()
        run_id = self._child_run(parent_run_id, key, name, tags, started)
        self.client.log_batch(run_id, metrics=_metrics(metrics), params=_params(params))
        if tables:
            with tempfile.TemporaryDirectory() as tmp:
                for filename, table in tables.items():
                    path = Path(tmp) / filename
                    pq.write_table(table, path, compression="zstd")
                    self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, "FINISHED", end_time=ended_ms or now_ms())
        return run_id

    def _child_run(
        self, parent_run_id: str, key: str, name: str, tags: dict | None, started_ms: int | None = None
    ) -> str:
        """A unit's run under its sweep, with the sweep's provenance (this process's Ray cluster)."""
        if parent_run_id not in self._inherited:
            parent = self.client.get_run(parent_run_id).data.tags
            self._inherited[parent_run_id] = {k: parent[k] for k in PROVENANCE if k in parent}
        inherited = self._inherited[parent_run_id] | {RAY_ADDRESS: ray_address()}
        all_tags = {PARENT: parent_run_id, UNIT_KEY: key, KIND: "unit", **inherited, **(tags or {})}
        run = self.client.create_run(self.experiment_id, start_time=started_ms, run_name=name, tags=all_tags)
        return run.info.run_id

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
        run_id = self._child_run(parent_run_id, key, name, tags)
        self.client.log_batch(run_id, params=_params(params))
        return run_id

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
        """Training curves: each record's numbers as metrics at step `record[step]`, one batch,
        stamped with the record's own time (`STEP_TIME`, ms) when it has one, else now."""
        skip = {step, STEP_TIME}
        batch = [
            m
            for r in records
            for m in _metrics(
                {k: v for k, v in r.items() if k not in skip and _finite(v)}, int(r[step]), r.get(STEP_TIME)
            )
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

    # ---- trainers: system metrics and models ----------------------------------------------
    @contextlib.contextmanager
    def system_metrics(self, run_id: str, interval: float | None = None) -> Iterator[None]:
        """MLflow's system-metrics monitor on `run_id` for the block: CPU, memory, disk, network,
        and GPU utilisation and memory where NVML sees a GPU, as `system/...` metrics every
        `interval` s (SWEEPS_SYSTEM_METRICS_INTERVAL, default 10). A reopened run continues its
        steps. A monitor that cannot start leaves the training alone."""
        import logging

        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # no line per start/stop
        if interval is None:
            interval = float(os.environ.get(SYSTEM_METRICS_INTERVAL_VARIABLE, "10"))
        monitor = SystemMetricsMonitor(
            run_id, sampling_interval=interval, resume_logging=True, tracking_uri=self.tracking_uri
        )
        monitor.start()
        try:
            yield
        finally:
            monitor.finish()

    def log_model(
        self,
        run_id: str,
        model,
        example,
        name: str = "model",
        register_as: str | None = None,
        tags: dict | None = None,
        step: int = 0,
    ) -> str:
        """A trained model as an MLflow model of `run_id`: a torch module through `mlflow.pytorch`,
        saved as a torch.export program (loading it runs no pickle), or a `CodeModel` (a network
        torch.export cannot capture) as a pyfunc loaded by running its code file. `example` is one
        input batch: for a module, a tensor or a dict of named tensors in the order of `forward`'s
        arguments (the signature is inferred from it and the model's output; a named example goes
        beside the model as `input_example.npz`); for a `CodeModel`, an array. Registered as a new
        version of `register_as` when given, the version tagged with `tags`. MLflow links the run's
        metrics at `step` (the last epoch's validation numbers) to the model; a file store also
        repeats them in the run's history, same timestamps. Returns the model's URI."""
        with self._fluent(run_id):
            log = self._log_code_model if isinstance(model, CodeModel) else self._log_torch_model
            info = log(run_id, model, example, name, register_as, tags, step)
            if register_as and info.registered_model_version is not None:
                version = str(info.registered_model_version)
                for tag, value in (tags or {}).items():
                    self.client.set_model_version_tag(register_as, version, tag, str(value))
        return info.model_uri

    def register_model(self, run_id: str, name: str, tags: dict | None = None) -> str | None:
        """The model logged by `run_id` as a version of the registered model `name`, tagged with
        `tags`: the version that already holds it when there is one (a re-run registers nothing
        twice), else a new one. None when the run logged no model (say, trained before models
        were logged). Returns the version."""
        tags = {k: str(v) for k, v in (tags or {}).items()}
        with self._fluent(run_id):
            found = self.client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
            if found:
                version = str(found[0].version)
                for tag, value in tags.items():
                    self.client.set_model_version_tag(name, version, tag, value)
                return version
            experiment = self.client.get_run(run_id).info.experiment_id
            logged = self.client.search_logged_models([experiment], f"source_run_id = '{run_id}'")
            if not logged:
                return None
            if not self.client.search_registered_models(f"name = '{name}'"):
                self.client.create_registered_model(name)
            model = logged[0]
            made = self.client.create_model_version(
                name, model.model_uri, run_id, tags, model_id=model.model_id
            )
            return str(made.version)

    def set_model_alias(self, name: str, alias: str, version: str, run_id: str) -> None:
        """Point `alias` of the registered model `name` at `version` (the model of `run_id`)."""
        with self._fluent(run_id):
            self.client.set_registered_model_alias(name, alias, version)

    @contextlib.contextmanager
    def _fluent(self, run_id: str) -> Iterator[None]:
        """MLflow's fluent API aimed at this server and at the run's experiment (else it files a
        logged model under experiment "0"). Registry calls go in here too: a file store's
        registry opens a client on the default URI (an `mlflow.db` in the working directory)."""
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        experiment = self.client.get_run(run_id).info.experiment_id
        with _use_tracking_uri(self.tracking_uri), _environment(MLFLOW_EXPERIMENT_ID=experiment):
            yield

    @staticmethod
    def _log_torch_model(run_id, model, example, name, register_as, tags, step):
        """`mlflow.pytorch` in the pt2 format (torch.export): a CPU copy of the module, its
        signature inferred from the example and the copy's output on it."""
        import mlflow.pytorch
        import numpy as np
        import torch
        from mlflow.models import infer_signature

        named = example if isinstance(example, dict) else {"input": example}
        named = {k: torch.as_tensor(v).to("cpu") for k, v in named.items()}
        model = copy.deepcopy(model).eval().to("cpu")  # the trainer keeps its own, on its device
        with torch.no_grad():
            output = model(*named.values())
        output = output[0] if isinstance(output, tuple | list) else output
        arrays = {k: v.numpy() for k, v in named.items()}
        signature = infer_signature(arrays if len(arrays) > 1 else arrays["input"], output.numpy())
        with tempfile.TemporaryDirectory() as tmp:
            extra = None
            if len(arrays) > 1:  # MLflow saves a tensor example only; a named one goes beside it
                extra = [str(Path(tmp) / "input_example.npz")]
                np.savez(extra[0], **arrays)
            return mlflow.pytorch.log_model(
                model,
                name=name,
                run_id=run_id,
                signature=signature,
                input_example=tuple(arrays.values()) if len(arrays) > 1 else arrays["input"],
                extra_files=extra,
                pip_requirements=_requirements("torch", "numpy"),
                serialization_format="pt2",
                registered_model_name=register_as,
                validate_serving_input=False,
                tags={k: str(v) for k, v in (tags or {}).items()},
                step=step,
            )

    @staticmethod
    def _log_code_model(run_id, model: CodeModel, example, name, register_as, tags, step):
        """A pyfunc from code: the code file and its artifacts stored in the model; MLflow runs the
        model on the example once, checking it against the signature."""
        import mlflow.pyfunc
        from mlflow.models import Model

        with tempfile.TemporaryDirectory() as tmp:
            artifacts = {}
            for key, blob in model.artifacts.items():
                (Path(tmp) / key).write_bytes(blob)
                artifacts[key] = str(Path(tmp) / key)
            return Model.log(
                name=name,
                artifact_path=None,
                flavor=mlflow.pyfunc,
                run_id=run_id,
                python_model=str(model.code),
                artifacts=artifacts,
                signature=model.signature,
                input_example=example,
                pip_requirements=_requirements(*model.requirements) + _project_requirement(),
                registered_model_name=register_as,
                tags={k: str(v) for k, v in (tags or {}).items()},
                step=step,
            )

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
