"""Table builders: values against the functions they summarise, Markdown layout, the three file formats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from scipy import stats as st

from stats import bootstrap_ci, compare, correlation_table, first_values, regret_at
from stats.tables import (
    bone_age_report,
    budgets_report,
    correlation_report,
    markdown_table,
    oneshot_report,
    readers_report,
    to_markdown,
)


def test_written_files_hold_the_table(tmp_path, correlation_cells):
    report = correlation_report(correlation_cells)
    paths = report.write(tmp_path / "out")
    assert {p.name for p in paths.values()} == {"correlation.md", "correlation.csv", "correlation.parquet"}
    assert pq.read_table(paths["parquet"]).equals(report.table)
    csv = pacsv.read_csv(paths["csv"]).to_pandas()
    np.testing.assert_allclose(csv["mean"], report.table["mean"].to_numpy())
    assert paths["md"].read_text().strip() == report.markdown.strip()


def test_correlation_report_marks_excluded_replicates(correlation_cells):
    report = correlation_report(correlation_cells)
    assert report.table.equals(correlation_table(correlation_cells))
    rows = {
        line.split(" | ")[0].strip("| "): line
        for line in report.markdown.splitlines()
        if line.startswith("| A")
    }
    frame = report.table.to_pandas().set_index(["space", "variant"])
    flagged = frame.loc[("A4", "BNS-FT")]
    assert flagged["excluded"] == 1 and flagged["n"] == 4
    half = (flagged["ci_high"] - flagged["ci_low"]) / 2
    assert f"*{flagged['mean']:.2f} ± {half:.2f}" in rows["A4"]
    assert "*" not in rows["A1"]
    assert report.markdown.splitlines()[2] == "| space | NO-FT | BNS-FT |"


def test_oneshot_report_equals_compare_at_the_ws_budget(trajectories):
    report = oneshot_report(trajectories)
    out = report.table.to_pandas()
    assert len(out) == 8  # 2 spaces x 4 pairs
    row = out[(out.space == "A4") & (out.pair == "RS_bs - GS_ws")].iloc[0]
    space = trajectories[trajectories.space == "A4"]
    ws = space[space.method == "GS_ws"]
    budget = ws.groupby("run_id").time.min().mean()
    assert row.budget == pytest.approx(budget)
    ra = regret_at(space[space.method == "RS_bs"], budget)["regret"].to_numpy()
    rb = first_values(ws)["regret"].to_numpy()  # each WS run's first pick (thesis 4.3.3)
    assert np.allclose(
        rb,
        ws.sort_values("time")
        .groupby("run_id", sort=False)
        .regret.first()[first_values(ws)["run_id"].to_pylist()],
    )
    ref = compare(ra * 100, rb * 100)
    for field in ("mean_diff", "pooled_sd", "pvalue", "cohen_d", "prob_superiority", "ci_low", "ci_high"):
        assert row[field] == pytest.approx(getattr(ref, field), rel=1e-12)
    assert st.ttest_ind(ra, rb).pvalue == pytest.approx(row.pvalue, rel=1e-9)
    cell = f"{ref.mean_diff:.2f} ± {ref.pooled_sd:.2f} ({_p_text(ref.pvalue)}, d={ref.cohen_d:+.2f})"
    assert cell in report.markdown and "p=0.00" not in report.markdown


def _p_text(p: float) -> str:
    """A p as the one-shot tables print it: as many decimals as it needs ('.55', '.003'), never 0.00."""
    for decimals, floor in ((2, 0.01), (3, 0.001), (4, 0.0001)):
        if p >= floor:
            return "p=" + f"{p:.{decimals}f}".removeprefix("0")
    return "p < .0001"


def _hand_made() -> pd.DataFrame:
    """Two baseline runs and two WS runs whose first pick and later value differ (regret x 100):
    WS run w1 picks 5 at t=4 then finds 1 at t=5; w2 picks 3 at t=6, finds 1 at t=8. Budget =
    mean first time = 5; baselines at t=5: 6 and 4."""
    rows = [
        ("b1", "RS_bs", [1.0, 3.0, 7.0], [0.09, 0.06, 0.02]),
        ("b2", "RS_bs", [2.0, 4.5, 9.0], [0.08, 0.04, 0.01]),
        ("w1", "RS_ws", [4.0, 5.0], [0.05, 0.01]),
        ("w2", "RS_ws", [6.0, 8.0], [0.03, 0.01]),
    ]
    return pd.concat(
        pd.DataFrame({"space": "A1", "method": m, "run_id": r, "time": t, "regret": v}) for r, m, t, v in rows
    )


def test_oneshot_counts_each_ws_runs_first_pick_as_the_thesis_does():
    report = oneshot_report(_hand_made(), pairs=[("RS_bs", "RS_ws")])
    row = report.table.to_pandas().iloc[0]
    assert row.budget == 5.0
    # thesis 4.3.3: mean(6, 4) - mean(5, 3) = 1.0; counting each WS run's value at the budget
    # (w1 had found 1 by t=5) would give mean(6, 4) - mean(1, 3) = 3.0
    assert row.mean_diff == pytest.approx(1.0) and row.pooled_sd == pytest.approx(np.sqrt(2.0))
    assert row.cohen_d == pytest.approx(1 / np.sqrt(2.0))
    assert row.pvalue == pytest.approx(st.ttest_ind([6, 4], [5, 3]).pvalue)
    at_budget = oneshot_report(_hand_made(), pairs=[("RS_bs", "RS_ws")], pick="budget").table
    assert at_budget["mean_diff"][0].as_py() == pytest.approx(3.0)
    assert "1.00 ± 1.41 (p=.55, d=+0.71)" in report.markdown


def test_budgets_report_compares_every_run_at_multiples_of_the_one_shot_budget():
    report = budgets_report(_hand_made(), pairs=[("RS_bs", "RS_ws")], multiples=(1.0, 2.0))
    out = report.table.to_pandas()
    assert out.multiple.tolist() == [1.0, 2.0] and out.budget.tolist() == [5.0, 10.0]
    # at t=5: baselines 6, 4; WS 1 (w1's second cell) and 3 (w2's first, evaluated later)
    assert out.mean_diff.tolist() == pytest.approx([3.0, 0.5])  # at t=10: (2 + 1)/2 - (1 + 1)/2
    assert "| A1 | 2x (10) |" in report.markdown
    assert report.name == "budgets"


def test_oneshot_report_with_given_budgets_and_pairs(trajectories):
    report = oneshot_report(
        trajectories, pairs=[("RS_bs", "RS_ws")], budgets={"A1": 60.0, "A4": 70.0}, scale=1
    )
    out = report.table.to_pandas()
    assert out.budget.tolist() == [60.0, 70.0] and out.pair.unique().tolist() == ["RS_bs - RS_ws"]
    with pytest.raises(ValueError, match="no entry for space 'A4'"):
        oneshot_report(trajectories, budgets={"A1": 60.0})
    with pytest.raises(ValueError, match="no pair of"):
        oneshot_report(trajectories, pairs=[("X", "Y")])
    with pytest.raises(ValueError, match="method 'RS_bs': .* no evaluation by time"):
        oneshot_report(trajectories, budgets=0.1)
    one_ws_run = trajectories[(trajectories.method != "RS_ws") | trajectories.run_id.str.endswith("-0")]
    with pytest.raises(ValueError, match="space 'A1', pair RS_bs - RS_ws: b needs at least 2 values"):
        oneshot_report(one_ws_run)


def test_bone_age_report_matches_direct_bootstraps(bone_age):
    report = bone_age_report(bone_age, n_resamples=2000, seed=3)
    out = report.table.to_pandas()
    assert set(out.subgroup) == {
        "all",
        "F",
        "M",
        "F[5,9[",
        "F[9,13[",
        "F[13,17]",
        "M[5,9[",
        "M[9,13[",
        "M[13,17]",
    }
    assert len(out) == 2 * 9 * 3
    model = bone_age[bone_age.model == "BSL"]
    # Boys between 9 (included) and 13 (excluded).
    mask = (model.sex == "M") & (model.chronological_age >= 9) & (model.chronological_age < 13)
    sub = model[mask]
    row = out[(out.model == "BSL") & (out.subgroup == "M[9,13[") & (out.metric == "mae")].iloc[0]
    assert row.n == mask.sum()
    assert row.estimate == pytest.approx(np.mean(np.abs(sub.predicted - sub.bone_age)))
    ref = bootstrap_ci(
        (sub.predicted - sub.bone_age).to_numpy(), "mae", 0.90, "bca", 2000, 3, sub.patient_id.to_numpy()
    )
    assert (row.ci_low, row.ci_high) == pytest.approx((ref.low, ref.high))
    sens = out[(out.model == "BSL") & (out.subgroup == "all") & (out.metric == "sensitivity")].iloc[0]
    truth, call = model.pathological.to_numpy(), model.predicted_pathological.to_numpy()
    assert sens.estimate == pytest.approx((truth & call).sum() / truth.sum())
    assert sens.ci_low < sens.estimate < sens.ci_high
    # Sub-group sizes add up: the bins cover [5, 17] and the sexes the whole population.
    counts = out[out.metric == "mae"].drop_duplicates("subgroup").set_index("subgroup").n
    assert counts["F"] + counts["M"] == counts["all"] == len(model)
    assert counts["F[5,9["] + counts["F[9,13["] + counts["F[13,17]"] == counts["F"]
    assert "| model | MAE | Sensitivity | Specificity |" in report.markdown
    assert f"F[5,9[ (N={counts['F[5,9[']})" in report.markdown


def test_bone_age_levels_and_undefined_metrics(bone_age):
    narrow = bone_age_report(bone_age, level=0.80, n_resamples=1000).table.to_pandas()
    wide = bone_age_report(bone_age, level=0.95, n_resamples=1000).table.to_pandas()
    assert np.all((wide.ci_high - wide.ci_low) >= (narrow.ci_high - narrow.ci_low) - 1e-12)
    healthy = bone_age.assign(pathological=False)
    out = bone_age_report(healthy, n_resamples=200).table.to_pandas()
    assert out[out.metric == "sensitivity"].estimate.isna().all()
    assert out[out.metric == "specificity"].estimate.notna().all()
    with pytest.raises(ValueError, match="must hold F/M"):
        bone_age_report(bone_age.assign(sex="X"), n_resamples=200)


def test_readers_report_is_a_one_sided_paired_t_test(readings):
    report = readers_report(readings, lower_is_better=["reading_time"])
    out = report.table.to_pandas().set_index("metric")
    wide = readings.pivot_table(index="reader", columns=["metric", "condition"], values="value")
    se_a, se_u = wide[("SE_pw", "aided")], wide[("SE_pw", "unaided")]
    assert out.loc["SE_pw", "pvalue"] == pytest.approx(st.ttest_rel(se_a, se_u, alternative="greater").pvalue)
    ci = st.ttest_rel(se_a, se_u).confidence_interval(0.95)
    assert (out.loc["SE_pw", "ci_low"], out.loc["SE_pw", "ci_high"]) == pytest.approx((ci.low, ci.high))
    assert out.loc["SE_pw", "unaided_sd"] == pytest.approx(np.std(se_u, ddof=1))
    t_a, t_u = wide[("reading_time", "aided")], wide[("reading_time", "unaided")]
    assert out.loc["reading_time", "alternative"] == "less"
    assert out.loc["reading_time", "pvalue"] == pytest.approx(
        st.ttest_rel(t_a, t_u, alternative="less").pvalue
    )
    line = next(x for x in report.markdown.splitlines() if x.startswith("| SE_pw"))
    assert f"{se_u.mean():.1f} ± {np.std(se_u, ddof=1):.1f}" in line
    assert f"{se_a.mean() - se_u.mean():+.1f} [{ci.low:.1f}, {ci.high:.1f}]" in line


def test_readers_report_bad_input(readings):
    with pytest.raises(ValueError, match="lack an aided or unaided value"):
        readers_report(readings.iloc[1:])
    with pytest.raises(ValueError, match="must be 'unaided' or 'aided'"):
        readers_report(readings.assign(condition="with AI"))
    with pytest.raises(ValueError, match="not in the input"):
        readers_report(readings, lower_is_better=["FPP"])
    with pytest.raises(ValueError, match="several values"):
        readers_report(pd.concat([readings, readings.iloc[:1]]))
    with pytest.raises(ValueError, match="metric 'SE_pw': a needs at least 2 values"):
        readers_report(readings[readings.reader == "R0"])


@pytest.mark.parametrize(
    ("builder", "columns"),
    [
        (correlation_report, ["space", "variant", "replicate", "proxy", "target"]),
        (oneshot_report, ["space", "method", "run_id", "time", "regret"]),
        (bone_age_report, ["model", "sex", "chronological_age", "bone_age", "predicted", "pathological"]),
        (readers_report, ["reader", "metric", "condition", "value"]),
    ],
)
def test_missing_columns_are_listed(builder, columns):
    table = pa.table({"other": [1.0], columns[0]: ["x"]})
    with pytest.raises(
        ValueError, match="missing column\\(s\\) " + ", ".join(f"'{c}'" for c in columns[1:3])
    ):
        builder(table)


def test_markdown_helpers():
    assert markdown_table(["a", "b"], [["1", "x|y"]]) == "| a | b |\n|---|---|\n| 1 | x\\|y |"
    assert to_markdown(pa.table({"k": ["u"], "v": [0.123456]})).splitlines()[-1] == "| u | 0.1235 |"
