"""`python -m stats table ...` end to end on a local MLflow store: files, same numbers as the builders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from stats import cli
from stats.tables import bone_age_report, correlation_report, oneshot_report, readers_report

ROOT = Path(__file__).resolve().parents[2]


def _run(store, tmp_path, *args) -> tuple[int, Path]:
    out = tmp_path / "tables"
    code = cli.main(["table", *args, "--tracking-uri", store.uri, "--out", str(out)])
    return code, out


def _frame(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def test_correlation_table_of_a_sweep(mlflow_store, tmp_path, capsys):
    store, ids = mlflow_store
    code, out = _run(
        store,
        tmp_path,
        "correlation",
        "--experiment",
        "correlation",
        "--parent-run",
        ids["correlation_parent"],
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "correlation.csv",
        "correlation.md",
        "correlation.parquet",
    ]
    expected = correlation_report(ids["correlation_cells"].astype({"replicate": str}))
    got = _frame(out / "correlation.parquet")
    pd.testing.assert_frame_equal(got, expected.table.to_pandas(), check_like=False)
    row = got[(got.space == "A4") & (got.variant == "BNS-FT")].iloc[0]
    assert row["n"] == 2 and row["excluded"] == 1  # replicate 1 diverged; the RUNNING run is not counted
    assert "ZZ" not in set(got.space)  # not a child of the sweep
    printed = capsys.readouterr().out
    assert (
        expected.markdown in printed
        and (out / "correlation.md").read_text().strip() == expected.markdown.strip()
    )


def test_correlation_statuses_and_whole_experiment(mlflow_store, tmp_path):
    store, ids = mlflow_store
    code, out = _run(
        store, tmp_path, "correlation", "--experiment", "correlation", "--all-statuses", "--method", "kendall"
    )
    assert code == 0
    got = _frame(out / "correlation.parquet")
    assert got[(got.space == "A1") & (got.variant == "NO-FT")]["n"].iloc[0] == 4  # the running run counts now
    assert "ZZ" in set(got.space) and set(got.method) == {"kendall"}  # whole experiment; parent run ignored


def test_oneshot_table(mlflow_store, tmp_path):
    store, ids = mlflow_store
    code, out = _run(store, tmp_path, "oneshot", "--experiment", "oneshot")
    assert code == 0
    expected = oneshot_report(ids["trajectories"]).table.to_pandas()
    got = _frame(out / "oneshot.parquet")
    pd.testing.assert_frame_equal(got, expected)
    assert got.pair.tolist() == ["RS_bs - RS_ws", "RS_bs - GS_ws", "GS_bs - RS_ws", "GS_bs - GS_ws"]


def test_oneshot_on_another_clock(mlflow_store, tmp_path, capsys):
    store, _ = mlflow_store
    args = ["oneshot", "--experiment", "oneshot", "--pairs", "RS_bs:RS_ws"]
    code, out = _run(store, tmp_path, *args, "--time-column", "step")
    assert code == 0
    got = _frame(out / "oneshot.parquet")
    assert got.pair.tolist() == ["RS_bs - RS_ws"] and got.budget.tolist() == [1.0]  # WS runs start at step 1
    code, _ = _run(store, tmp_path, *args, "--time-column", "seconds")
    assert code == 2 and "no clock column seconds" in capsys.readouterr().err


def test_bone_age_table(mlflow_store, tmp_path):
    store, ids = mlflow_store
    code, out = _run(
        store, tmp_path, "bone-age", "--experiment", "bone-age", "--n-resamples", "500", "--seed", "4"
    )
    assert code == 0
    expected = bone_age_report(ids["bone_age"], level=0.90, n_resamples=500, seed=4).table.to_pandas()
    pd.testing.assert_frame_equal(_frame(out / "bone_age.parquet"), expected)


def test_readers_table(mlflow_store, tmp_path, capsys):
    store, ids = mlflow_store
    code, out = _run(
        store, tmp_path, "readers", "--experiment", "readers", "--lower-is-better", "reading_time"
    )
    assert code == 0
    expected = readers_report(ids["readings"], lower_is_better=["reading_time"]).table.to_pandas()
    got = _frame(out / "readers.parquet").set_index("metric").loc[expected.metric].reset_index()
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
    assert "| Metric | Unaided | Aided | Absolute Difference | p |" in capsys.readouterr().out


def test_runs_without_the_needed_params_exit_2_and_write_nothing(mlflow_store, tmp_path, capsys):
    store, _ = mlflow_store
    code, out = _run(store, tmp_path, "correlation", "--experiment", "bone-age")
    assert code == 2 and not out.exists()
    assert "no run has param(s) params.space, params.variant, params.replicate" in capsys.readouterr().err


def test_unknown_experiment_exits_2_with_a_clear_message_and_no_files(mlflow_store, tmp_path):
    store, _ = mlflow_store
    out = tmp_path / "tables"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stats",
            "table",
            "correlation",
            "--experiment",
            "no-such-sweep",
            "--tracking-uri",
            store.uri,
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "error: no MLflow experiment named 'no-such-sweep'" in proc.stderr
    assert proc.stdout == "" and not out.exists()


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["table", "histogram", "--experiment", "x"])
    assert exc.value.code == 2
    assert "invalid choice: 'histogram'" in capsys.readouterr().err


def test_a_sweeps_runs_read_as_the_tables_need_them():
    """A sweep logs one proxy column per mode and WS variants as a param: the CLI reshapes both."""
    import pyarrow as pa

    evaluations = pa.table(
        {
            "run_id": ["e0", "e0", "e1", "e1"],
            "space": ["A1"] * 4,
            "variant": ["uniform", "uniform", "SINGLE-K", "SINGLE-K"],
            "replicate": ["0", "0", "0", "0"],
            "modes": ["NO-FT,BNS-FT", "NO-FT,BNS-FT", "BNS-FT", "BNS-FT"],
            "NO-FT": [0.1, 0.2, None, None],
            "BNS-FT": [0.3, 0.4, 0.5, 0.6],
            "target": [0.9, 0.8, 0.7, 0.6],
        }
    )
    long = cli._proxies_long(evaluations).to_pandas()
    assert long.variant.tolist() == ["BNS-FT", "BNS-FT", "SINGLE-K", "SINGLE-K", "NO-FT", "NO-FT"]
    assert long.proxy.tolist() == [0.3, 0.4, 0.5, 0.6, 0.1, 0.2]
    assert long.target.tolist() == [0.9, 0.8, 0.7, 0.6, 0.9, 0.8]
    searches = pa.table({"method": ["RS_bs", "RS_ws", "GS_ws"], "variant": [None, "uniform", "AVG-3"]})
    assert cli._with_variants(searches)["method"].to_pylist() == ["RS_bs", "RS_ws", "GS_ws[AVG-3]"]
    assert "variant" not in cli._with_variants(searches).column_names
