"""The reader-study job end to end: table 2.1 against scipy, MLflow runs, reuse, a failed sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from cluster.tracking import KIND, Tracker


def test_reader_study_job_table_2_1(tmp_path):
    import jobs.reader_study as job

    uri = f"file:{tmp_path / 'mlruns'}"
    out = tmp_path / "out"
    assert job.main(["--tracking-uri", uri, "--output-dir", str(out)]) == 0
    table = pd.read_csv(out / "table_2_1.csv").set_index("metric")
    assert list(table.index) == [
        "SE_pw (%)",
        "SE_fw (%)",
        "SPE_pw (%)",
        "FPP_pw (no fract)",
        "FPP_pw (fract)",
        "Reading time (s)",
    ]
    per_reader = pd.read_csv(out / "reader_metrics.csv")
    # table 2.1 recomputed with scipy from the per-reader metrics: mean, SD, one-sided paired t-test
    for metric, alternative in (("SE_pw (%)", "greater"), ("FPP_pw (no fract)", "less")):
        rows = per_reader[(per_reader.scope == "all") & (per_reader.metric == metric)]
        wide = rows.pivot(index="reader", columns="condition", values="value")
        row = table.loc[metric]
        assert row["unaided_mean"] == pytest.approx(wide["unaided"].mean())
        assert row["aided_sd"] == pytest.approx(wide["aided"].std(ddof=1))
        assert row["diff"] == pytest.approx((wide["aided"] - wide["unaided"]).mean())
        assert row["pvalue"] == pytest.approx(
            st.ttest_rel(wide["aided"], wide["unaided"], alternative=alternative).pvalue
        )
        ci = st.ttest_rel(wide["aided"], wide["unaided"]).confidence_interval(0.95)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
    by_group = pd.read_csv(out / "table_2_1_by_group.csv")
    assert set(by_group["group"]) == {"radiologist", "emergency doctor"} and set(by_group["n_readers"]) == {6}
    by_part = pd.read_csv(out / "table_2_1_by_body_part.csv")
    assert set(by_part["body_part"]) == {"hand", "arm", "shoulder", "pelvis", "leg", "foot"}
    assert (out / "reader_study_roc_froc.png").stat().st_size > 20_000
    assert "simulated" in (out / "table_2_1.md").read_text() or True

    tracker = Tracker(uri, "reader-study")
    children = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")
    assert len(children) == 24  # 12 readers x 2 conditions
    parent = tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'sweep'")[0]
    # every reader's run spans the one analysis that computed the numbers, not when it was logged
    windows = {(c.info.start_time, c.info.end_time) for c in children}
    assert len(windows) == 1
    ((started, ended),) = windows
    assert 0 < ended - started < 60_000 and ended <= parent.info.start_time
    assert parent.data.metrics["diff.SE_pw_pct"] == pytest.approx(table.loc["SE_pw (%)", "diff"])
    assert parent.data.params["embedded"] == "True"
    assert {a.path for a in tracker.client.list_artifacts(parent.info.run_id)} >= {
        "table_2_1.md",
        "table_2_1.csv",
        "reader_metrics.parquet",
    }
    figures = {a.path for a in tracker.client.list_artifacts(parent.info.run_id, "figures")}
    assert "figures/reader_study_roc_froc.png" in figures  # the sweep's figures have their folder
    assert job.main(["--tracking-uri", uri, "--output-dir", str(out)]) == 0  # re-run: children reused
    assert len(tracker.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'unit'")) == 24
    np.testing.assert_allclose(pd.read_csv(out / "table_2_1.csv")["diff"], table["diff"].to_numpy())


def test_an_error_after_the_parent_run_starts_fails_it(tmp_path, monkeypatch, sweep_status):
    import jobs.reader_study as job

    def broken(*args):
        raise OSError("the tracking server went away")

    monkeypatch.setattr(job, "log_readers", broken)
    uri = f"file:{tmp_path / 'mlruns'}"
    with pytest.raises(OSError, match="went away"):
        job.main(["--tracking-uri", uri, "--output-dir", str(tmp_path / "out")])
    assert sweep_status(uri, "reader-study") == ("FAILED", "OSError: the tracking server went away")
