"""Where runs are logged (mlflow_server.uri): --tracking-uri, else MLFLOW_TRACKING_URI, else the
local server; an unusable URI is one `error:` line naming it, before any work; a dry run starts
nothing and creates nothing; bad input anywhere in a job is one `error:` line, exit status 2."""

from __future__ import annotations

import pickle
import time

import pytest

from mlflow_server.uri import ENV, TrackingUnreachable, check, choose, peek


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def test_the_rule_is_flag_then_variable_then_the_local_server(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, f"sqlite:///{tmp_path}/env.db")
    assert choose("http://127.0.0.1:5111").uri == "http://127.0.0.1:5111"
    assert choose(None).uri == f"sqlite:///{tmp_path}/env.db" and choose(None).source == ENV
    monkeypatch.delenv(ENV)
    assert choose(None).uri == "http://127.0.0.1:5000" and "local server" in choose(None).source
    with pytest.raises(TrackingUnreachable, match="folder /no/such/folder does not exist"):
        check("sqlite:////no/such/folder/x.db")
    assert peek(f"sqlite:///{tmp_path}/absent.db") is None  # a dry run: nothing there yet
    assert not (tmp_path / "absent.db").exists()


def test_an_unreachable_server_ends_a_job_with_one_error_line_before_any_work(free_ports, tmp_path, capsys):
    from jobs import nb101_baselines

    uri = f"http://127.0.0.1:{free_ports(1)[0]}"
    out = tmp_path / "out"
    start = time.monotonic()
    status = nb101_baselines.main(
        ["--tracking-uri", uri, "--seeds", "1", "--budget", "5", "--output-dir", str(out)]
    )
    seconds = time.monotonic() - start
    captured = capsys.readouterr()
    assert status == 2 and seconds < 20  # MLflow's own client retried for more than 100 s
    [line] = _error_lines(captured.err)
    assert uri in line and "connection refused" in line and "Traceback" not in captured.err
    assert not out.exists()  # nothing written


def test_a_dry_run_reads_the_variable_and_creates_no_database(monkeypatch, tmp_path, capsys):
    from jobs import nb101_sweep

    monkeypatch.setenv(ENV, f"sqlite:///{tmp_path}/x.db")
    assert nb101_sweep.main(["--preset", "smoke", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"nothing at sqlite:///{tmp_path}/x.db (from {ENV}) yet" in out and "total: " in out
    assert not (tmp_path / "x.db").exists()


def test_a_corrupt_benchmark_and_a_refused_pickle_are_one_error_line(tmp_path, capsys):
    from core.nb101 import cli
    from jobs import nb101_baselines

    corrupt = tmp_path / "bench.parquet"
    corrupt.write_bytes(b"PAR1 this is not a parquet file")
    assert (
        nb101_baselines.main(["--benchmark", str(corrupt), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"])
        == 2
    )
    err = capsys.readouterr().err
    [line] = _error_lines(err)
    assert str(corrupt) in line and "not a Parquet file" in line and "Traceback" not in err
    assert not (tmp_path / "m.db").exists()  # stopped before the tracking store was touched

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("touch pwned",))

    evil = tmp_path / "nb101.pkl"
    evil.write_bytes(pickle.dumps({"cell": Evil()}))
    out = tmp_path / "imported.parquet"
    assert cli.main(["import", str(evil), "--format", "naslib-pickle", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    [line] = _error_lines(err)
    assert "refusing to load" in line and "Traceback" not in err and not out.exists()
