"""Reading runs back from a real local MLflow store (sqlite in tmp_path, nested runs, Parquet artifacts)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from stats import mlflow_io


def test_runs_of_an_experiment(mlflow_store):
    store, ids = mlflow_store
    runs = mlflow_io.runs_table("correlation", store.uri)
    assert runs.num_rows == 1 + 12 + 2
    assert runs.column_names[:8] == list(mlflow_io.BASE_COLUMNS)
    assert {
        "params.space",
        "params.variant",
        "params.replicate",
        "params.sweep",
        "tags.mlflow.parentRunId",
    } <= set(runs.column_names)
    assert runs.schema.field("start_time").type == pa.timestamp("ms", tz="UTC")
    assert runs.schema.field("params.replicate").type == pa.string()
    rows = runs.to_pylist()
    parent = next(r for r in rows if r["run_id"] == ids["correlation_parent"])
    assert (
        parent["parent_run_id"] is None
        and parent["params.space"] is None
        and parent["params.sweep"] == "table-4.3"
    )
    children = [r for r in rows if r["parent_run_id"] == ids["correlation_parent"]]
    assert len(children) == 13
    assert sorted(r["status"] for r in rows).count("RUNNING") == 1


def test_metrics_are_floats(mlflow_store):
    store, ids = mlflow_store
    runs = mlflow_io.runs_table("readers", store.uri).to_pandas()
    readings = ids["readings"]
    row = runs[(runs["params.reader"] == "R2") & (runs["params.condition"] == "aided")].iloc[0]
    expected = readings[
        (readings.reader == "R2") & (readings.condition == "aided") & (readings.metric == "SE_pw")
    ]
    assert row["metrics.SE_pw"] == pytest.approx(expected.value.iloc[0])


def test_children_of_a_parent_in_one_batched_query(mlflow_store, monkeypatch):
    from mlflow import MlflowClient

    store, ids = mlflow_store
    calls = []
    original = MlflowClient.search_runs

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("filter_string"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "search_runs", spy)
    runs = mlflow_io.runs_table("correlation", store.uri, parent_run_id=ids["correlation_parent"])
    assert runs.num_rows == 13  # 12 finished children and the running one; not the parent, not ZZ
    assert set(runs["parent_run_id"].to_pylist()) == {ids["correlation_parent"]}
    assert "ZZ" not in runs["params.space"].to_pylist()
    assert calls == [f"tags.mlflow.parentRunId = '{ids['correlation_parent']}'"]


def test_filter_string(mlflow_store):
    store, _ = mlflow_store
    runs = mlflow_io.runs_table("correlation", store.uri, filter_string="params.space = 'ZZ'")
    assert runs["params.space"].to_pylist() == ["ZZ"]


def test_parquet_artifacts_of_many_runs_in_one_table(mlflow_store):
    store, ids = mlflow_store
    runs = mlflow_io.runs_table("correlation", store.uri, parent_run_id=ids["correlation_parent"])
    runs = runs.filter(pa.compute.equal(runs["status"], "FINISHED"))
    table = mlflow_io.load_parquet_artifacts(
        runs, "proxy.parquet", store.uri, attach=["params.space", "params.variant", "params.replicate"]
    )
    assert table.column_names == ["run_id", "space", "variant", "replicate", "proxy", "target"]
    assert table.num_rows == 12 * 60
    assert set(table["run_id"].to_pylist()) == set(runs["run_id"].to_pylist())
    got = table.to_pandas().sort_values(["space", "variant", "replicate", "target"]).reset_index(drop=True)
    want = (
        ids["correlation_cells"]
        .astype({"replicate": str})
        .sort_values(["space", "variant", "replicate", "target"])
    )
    assert got["proxy"].to_numpy(na_value=-1.0) == pytest.approx(want["proxy"].fillna(-1.0).to_numpy())


def test_missing_artifacts_raise_or_are_skipped(mlflow_store):
    store, ids = mlflow_store
    runs = mlflow_io.runs_table("correlation", store.uri)  # includes the parent, which has no artifact
    with pytest.raises(ValueError, match="1 run\\(s\\) have no Parquet artifact 'proxy.parquet'"):
        mlflow_io.load_parquet_artifacts(runs, "proxy.parquet", store.uri)
    table = mlflow_io.load_parquet_artifacts(runs, "proxy.parquet", store.uri, missing="skip")
    assert ids["correlation_parent"] not in set(table["run_id"].to_pylist())
    with pytest.raises(ValueError, match="missing column"):
        mlflow_io.load_parquet_artifacts(runs, "proxy.parquet", store.uri, attach=["params.nope"])


def test_unknown_experiment_or_parent(mlflow_store):
    store, _ = mlflow_store
    with pytest.raises(mlflow_io.ExperimentNotFound, match="no MLflow experiment named 'nope'"):
        mlflow_io.runs_table("nope", store.uri)
    with pytest.raises(ValueError, match="no MLflow run with id"):
        mlflow_io.runs_table("correlation", store.uri, parent_run_id="0" * 32)
