"""Reading MLflow runs back into Arrow tables: tables are built from what was logged, not from memory.

- runs_table: the runs of an experiment, or the children of a parent run, in one batched search
  (MlflowClient.search_runs with a filter, paged by 50,000; never one call per run). Columns:
  run_id, parent_run_id, experiment_id, run_name, status, start_time, end_time, artifact_uri,
  then params.<name> (strings, as MLflow stores them), metrics.<name> (float64, latest value) and
  tags.<name> (strings); a key a run lacks is null.
- load_parquet_artifacts: one Parquet artifact (file or folder) of many runs concatenated into one
  table with a run_id column, plus run columns (e.g. params.space) repeated on every row.

Works with any tracking URI: a server, sqlite:///path/mlflow.db, or the MLFLOW_TRACKING_URI
environment variable when tracking_uri is None.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

PAGE_SIZE = 50_000  # MLflow's largest page (SEARCH_MAX_RESULTS_THRESHOLD)
BASE_COLUMNS = (
    "run_id",
    "parent_run_id",
    "experiment_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "artifact_uri",
)
_TIMESTAMP = pa.timestamp("ms", tz="UTC")


class ExperimentNotFound(ValueError):
    """No experiment of that name (or id) at the tracking URI."""


def _client(tracking_uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def _experiment(client, experiment: str):
    found = client.get_experiment_by_name(str(experiment))
    if found is None and str(experiment).isdigit():
        from mlflow.exceptions import MlflowException

        try:
            found = client.get_experiment(str(experiment))
        except MlflowException:
            found = None
    if found is None:
        known = sorted(e.name for e in client.search_experiments(max_results=1000))
        shown = ", ".join(map(repr, known[:10])) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
        raise ExperimentNotFound(
            f"no MLflow experiment named {experiment!r} at {client.tracking_uri}; "
            f"experiments there: {shown or 'none'}"
        )
    return found


def _quote(value: str) -> str:
    if "'" in value:
        raise ValueError(f"run id {value!r} contains a quote")
    return f"'{value}'"


def search_runs(experiment: str, tracking_uri=None, parent_run_id=None, filter_string: str = "") -> list:
    """The mlflow Run objects of `experiment` (or of the children of `parent_run_id`), oldest first."""
    client = _client(tracking_uri)
    exp = _experiment(client, experiment)
    clauses = [filter_string] if filter_string else []
    if parent_run_id is not None:
        from mlflow.exceptions import MlflowException

        try:
            parent = client.get_run(parent_run_id)
        except MlflowException:
            raise ValueError(f"no MLflow run with id {parent_run_id!r} at {client.tracking_uri}") from None
        if parent.info.experiment_id != exp.experiment_id:
            raise ValueError(f"run {parent_run_id!r} is not in experiment {experiment!r}")
        clauses.append(f"tags.mlflow.parentRunId = {_quote(parent_run_id)}")
    runs, token = [], None
    while True:
        page = client.search_runs(
            [exp.experiment_id],
            filter_string=" and ".join(clauses),
            max_results=PAGE_SIZE,
            order_by=["attributes.start_time ASC", "attributes.run_id ASC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def runs_to_table(runs: Sequence) -> pa.Table:
    """mlflow Run objects as one Arrow table (schema in the module docstring)."""
    params = sorted({k for r in runs for k in r.data.params})
    metrics = sorted({k for r in runs for k in r.data.metrics})
    tags = sorted({k for r in runs for k in r.data.tags})
    columns: dict[str, pa.Array] = {
        "run_id": pa.array([r.info.run_id for r in runs], pa.string()),
        "parent_run_id": pa.array([r.data.tags.get("mlflow.parentRunId") for r in runs], pa.string()),
        "experiment_id": pa.array([r.info.experiment_id for r in runs], pa.string()),
        "run_name": pa.array([r.info.run_name for r in runs], pa.string()),
        "status": pa.array([r.info.status for r in runs], pa.string()),
        "start_time": pa.array([r.info.start_time for r in runs], pa.int64()).cast(_TIMESTAMP),
        "end_time": pa.array([r.info.end_time for r in runs], pa.int64()).cast(_TIMESTAMP),
        "artifact_uri": pa.array([r.info.artifact_uri for r in runs], pa.string()),
    }
    for key in params:
        columns[f"params.{key}"] = pa.array([r.data.params.get(key) for r in runs], pa.string())
    for key in metrics:
        columns[f"metrics.{key}"] = pa.array([r.data.metrics.get(key) for r in runs], pa.float64())
    for key in tags:
        columns[f"tags.{key}"] = pa.array([r.data.tags.get(key) for r in runs], pa.string())
    return pa.table(columns)


def runs_table(experiment: str, tracking_uri=None, parent_run_id=None, filter_string: str = "") -> pa.Table:
    """Runs of `experiment` (name or id), or only the children of `parent_run_id`, as an Arrow table.

    `filter_string` is an MLflow search filter added to the query (e.g. "params.space = 'A1'").
    Unknown experiment: ExperimentNotFound (a ValueError); unknown parent run: ValueError.
    """
    return runs_to_table(search_runs(experiment, tracking_uri, parent_run_id, filter_string))


def _short(name: str) -> str:
    return name.split(".", 1)[1] if name.split(".", 1)[0] in ("params", "metrics", "tags") else name


def load_parquet_artifacts(
    runs,
    artifact_path: str,
    tracking_uri=None,
    attach: Iterable[str] = (),
    missing: str = "raise",
) -> pa.Table:
    """The Parquet artifact `artifact_path` of each run, concatenated, with a leading run_id column.

    `runs`: a runs_table (or any table with run_id), or a list of run ids. `attach`: columns of that
    table repeated on every row of the run, named without their prefix ("params.space" -> "space").
    A run without the artifact: 'raise' (ValueError listing them) or 'skip'. Artifacts are fetched
    run by run (MLflow stores them per run) into a temporary folder; schemas are unified.
    """
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    if missing not in ("raise", "skip"):
        raise ValueError(f"unknown missing {missing!r}; expected 'raise' or 'skip'")
    attach = list(attach)
    if isinstance(runs, pa.Table):
        table = runs
    elif hasattr(runs, "columns") and hasattr(runs, "to_dict"):
        table = pa.Table.from_pandas(runs, preserve_index=False)
    else:
        table = pa.table({"run_id": pa.array([str(r) for r in runs], pa.string())})
    wanted = ["run_id", *attach]
    absent = [c for c in wanted if c not in table.column_names]
    if absent:
        raise ValueError(f"runs table is missing column(s) {absent}; it has {table.column_names}")
    rows = table.select(wanted).to_pylist()

    parts, lacking = [], []
    with tempfile.TemporaryDirectory(prefix="stats-artifacts-") as tmp:
        for i, row in enumerate(rows):
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=row["run_id"],
                    artifact_path=artifact_path,
                    dst_path=f"{tmp}/{i}",
                    tracking_uri=tracking_uri,
                )
                part = pq.read_table(local)
            except (MlflowException, OSError):
                lacking.append(row["run_id"])
                continue
            if "run_id" in part.column_names:
                part = part.drop_columns(["run_id"])
            n = part.num_rows
            extra = {"run_id": pa.array([row["run_id"]] * n, pa.string())}
            for name in attach:
                extra[_short(name)] = pa.array([row[name]] * n, table.schema.field(name).type)
            clash = [c for c in extra if c != "run_id" and c in part.column_names]
            if clash:
                raise ValueError(f"attached column(s) {clash} already exist in artifact {artifact_path!r}")
            for j, (name, column) in enumerate(extra.items()):
                part = part.add_column(j, name, column)
            parts.append(part)
    if lacking and missing == "raise":
        shown = ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
        raise ValueError(f"{len(lacking)} run(s) have no Parquet artifact {artifact_path!r}: {shown}")
    if not parts:
        raise ValueError(f"no run has a Parquet artifact {artifact_path!r}")
    return pa.concat_tables(parts, promote_options="default")
