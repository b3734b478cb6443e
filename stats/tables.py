"""The thesis' tables built from Arrow tables of run results, as Markdown, CSV and Parquet.

Each builder takes a long table (Arrow or pandas; columns documented on the builder) and returns
a `Report`: a tidy Arrow table (one row per number, what the CSV and Parquet files hold) and its
Markdown rendering in the thesis' layout. `Report.write(folder)` writes <name>.md, <name>.csv and
<name>.parquet. Builders:

- correlation_report: rank correlation proxy vs truth per space and variant (table 4.3);
- oneshot_report: one-shot regret differences between searches (tables 4.4 and 4.5);
- budgets_report: the same differences at multiples of the one-shot budget ("given sufficient time");
- bone_age_report: MAE, sensitivity, specificity with bootstrap CIs by sub-group (tables 6.1-6.3);
- readers_report: reader-study aided vs unaided differences (table 2.1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from stats._checks import check_level
from stats._frames import to_arrow, to_pandas
from stats.bootstrap import bootstrap_ci
from stats.correlation import correlation_table
from stats.hypothesis_tests import compare
from stats.regret import PICKS, first_values, one_shot_budget, regret_at

# The pairs of tables 4.4 and 4.5: baseline search minus weight-sharing search (bs: benchmark, ws: WS).
THESIS_PAIRS = (("RS_bs", "RS_ws"), ("RS_bs", "GS_ws"), ("GS_bs", "RS_ws"), ("GS_bs", "GS_ws"))
# Chronological-age bins of tables 6.2 and 6.3, in years: [5, 9[, [9, 13[, [13, 17].
AGE_BINS = ((5.0, 9.0, "[5,9["), (9.0, 13.0, "[9,13["), (13.0, 17.0, "[13,17]"))


@dataclass(frozen=True)
class Report:
    """A built table: `table` (tidy, for CSV/Parquet) and `markdown` (the thesis layout)."""

    name: str
    table: pa.Table
    markdown: str

    def write(self, out_dir) -> dict[str, Path]:
        """Write <out_dir>/<name>.md, .csv and .parquet (creating out_dir); returns the paths."""
        return write_report(self, out_dir)


def write_report(report: Report, out_dir) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "md": out / f"{report.name}.md",
        "csv": out / f"{report.name}.csv",
        "parquet": out / f"{report.name}.parquet",
    }
    paths["md"].write_text(report.markdown if report.markdown.endswith("\n") else report.markdown + "\n")
    pacsv.write_csv(report.table, paths["csv"])
    pq.write_table(report.table, paths["parquet"])
    return paths


# --------------------------------------------------------------------------- formatting


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; pipes inside cells are escaped."""

    def cell(value) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(table) -> str:
    """Any Arrow table or frame as a plain Markdown table (floats with 4 significant digits)."""
    frame = to_pandas(table)

    def fmt(value) -> str:
        if isinstance(value, float | np.floating):
            return "" if math.isnan(value) else f"{value:.4g}"
        return str(value)

    return markdown_table(
        list(frame.columns), ([fmt(v) for v in row] for row in frame.itertuples(index=False))
    )


def _num(value: float, digits: int = 2, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _pvalue(p: float) -> str:
    """p as tables print it: .12, .003, .0006, < .0001."""
    if p is None or math.isnan(p):
        return "n/a"
    if p >= 0.01:
        text = f"{p:.2f}"
    elif p >= 0.001:
        text = f"{p:.3f}"
    elif p >= 0.0001:
        text = f"{p:.4f}"
    else:
        return "< .0001"
    return text[1:] if text.startswith("0") else text


# --------------------------------------------------------------------------- table 4.3


def correlation_report(table, method: str = "spearman", level: float = 0.95, digits: int = 2) -> Report:
    """Table 4.3: mean rank correlation and CI half-width per space (rows) and variant (columns).

    Input columns: space, variant, replicate, proxy, target (one row per evaluated cell; see
    stats.correlation.correlation_table). Output table: that function's output. In the Markdown a
    leading * marks cells where replicates were excluded (NaN or constant proxies).
    """
    result = correlation_table(table, method=method, level=level)
    frame = result.to_pandas()
    spaces = list(dict.fromkeys(frame["space"]))
    variants = list(dict.fromkeys(frame["variant"]))
    cells = {}
    for row in frame.itertuples(index=False):
        half = (row.ci_high - row.ci_low) / 2
        text = _num(row.mean, digits)
        if not math.isnan(half):
            text += f" ± {_num(half, digits)}"
        cells[(row.space, row.variant)] = ("*" if row.excluded else "") + text
    header = ["space", *map(str, variants)]
    rows = [[str(s), *(cells.get((s, v), "") for v in variants)] for s in spaces]
    title = (
        f"{method.capitalize()} rank correlation between proxy and true accuracy: mean ± half-width of"
        f" the {level:.0%} CI over replicates; * = replicates excluded (NaN or constant proxies)."
    )
    return Report("correlation", result, title + "\n\n" + markdown_table(header, rows))


# --------------------------------------------------------------------------- tables 4.4 / 4.5


def oneshot_report(
    trajectories,
    pairs: Sequence[tuple[str, str]] = THESIS_PAIRS,
    budgets: float | dict | None = None,
    scale: float = 100.0,
    equal_var: bool = True,
    level: float = 0.95,
    digits: int = 2,
    pick: str = "first",
) -> Report:
    """Tables 4.4 / 4.5: one-shot regret differences a - b per space, with pooled SD, p and d.

    Input columns: space, method, run_id, time, regret (one row per evaluation of a search run;
    `time` on one clock for all methods). For each space and pair (a, b) both present, as thesis
    4.3.3 does it: each b run (the weight-sharing search) counts the regret of its first
    evaluation (its one-shot pick); the budget is the mean time of those first evaluations (or
    `budgets`: a number, or a dict space -> number); each a run counts its regret at the budget
    (a run without any evaluation by then is an error). pick="budget" makes b runs count their
    value at the budget instead (their first one if they have none by then). Regrets are
    multiplied by `scale` (the thesis prints regret x 100). Independent t-test (Student's by
    default, Welch with equal_var=False).
    Output columns: space, a, b, pair, budget, n_a, n_b, mean_diff, pooled_sd, ci_low, ci_high,
    statistic, pvalue, cohen_d, prob_superiority. mean_diff > 0: b has the smaller regret.
    """
    frame = _oneshot_input(trajectories)
    rows = []
    for space, runs in frame.groupby("space", sort=False):
        for a, b in _pairs_in(runs, pairs):
            if isinstance(budgets, dict):
                if space not in budgets:
                    raise ValueError(f"budgets has no entry for space {space!r}")
                budget = float(budgets[space])
            elif budgets is not None:
                budget = float(budgets)
            else:
                budget = one_shot_budget(runs, b)
            rows.append(_pair_row(runs, space, a, b, budget, pick, scale, equal_var, level))
    result_frame = _rows_or_raise(rows, frame, pairs)
    title = (
        f"One-shot regret differences (regret x {scale:g}; thesis 4.3.3: each WS run counts its first"
        " evaluation, the budget is their mean time, each baseline run counts its regret at the budget):"
        " mean difference ± pooled SD, independent t-test p and Cohen's d; d > 0 means the second search"
        " has the smaller regret."
    )
    body = _pair_cells(result_frame, ["space"], lambda r: [str(r.space)], digits)
    return Report("oneshot", to_arrow(result_frame), title + "\n\n" + body)


def budgets_report(
    trajectories,
    pairs: Sequence[tuple[str, str]] = THESIS_PAIRS,
    multiples: Sequence[float] = (2.0, 10.0, 100.0),
    scale: float = 100.0,
    equal_var: bool = True,
    level: float = 0.95,
    digits: int = 2,
) -> Report:
    """The one-shot differences at multiples of each pair's one-shot budget: both searches at
    their regret at `multiple` x the mean first-evaluation time of b (a b run not started by then
    counts its first value), for the thesis' question "given sufficient time" (fig. 4.2).
    Input as oneshot_report. Output columns: oneshot_report's plus `multiple`.
    """
    frame = _oneshot_input(trajectories)
    rows = []
    for space, runs in frame.groupby("space", sort=False):
        for multiple in multiples:
            for a, b in _pairs_in(runs, pairs):
                budget = float(multiple) * one_shot_budget(runs, b)
                row = _pair_row(runs, space, a, b, budget, "budget", scale, equal_var, level)
                rows.append({"multiple": float(multiple)} | row)
    result_frame = _rows_or_raise(rows, frame, pairs)
    title = (
        f"Regret differences at multiples of the one-shot budget (regret x {scale:g}; every run at its"
        " regret at that time): mean difference ± pooled SD, p and Cohen's d; d > 0 means the second"
        " search has the smaller regret."
    )
    body = _pair_cells(
        result_frame,
        ["space", "budget"],
        lambda r: [str(r.space), f"{r.multiple:g}x ({_budget(r.budget)})"],
        digits,
        key=("space", "multiple"),
    )
    return Report("budgets", to_arrow(result_frame), title + "\n\n" + body)


def _budget(value: float) -> str:
    """A budget as tables print it: 72,320 or 0.5."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _oneshot_input(trajectories) -> pd.DataFrame:
    frame = to_pandas(trajectories, ("space", "method", "run_id", "time", "regret"), "one-shot input")
    if len(frame) == 0:
        raise ValueError("one-shot input is empty")
    return frame


def _pairs_in(runs: pd.DataFrame, pairs) -> list[tuple[str, str]]:
    methods = set(runs["method"])
    return [(a, b) for a, b in pairs if a in methods and b in methods]


def _pair_row(runs, space, a, b, budget, pick, scale, equal_var, level) -> dict:
    """One pair's comparison in one space: a at the budget, b by `pick`."""
    if pick not in PICKS:
        raise ValueError(f"pick must be one of {PICKS}, got {pick!r}")
    level = check_level(level)
    where = f"space {space!r}"
    try:
        ra = regret_at(runs[runs["method"] == a], budget, "raise")["regret"].to_numpy()
    except ValueError as exc:
        raise ValueError(f"{where}, method {a!r}: {exc}") from None
    b_runs = runs[runs["method"] == b]
    if pick == "first":
        rb = first_values(b_runs)["regret"].to_numpy()
    else:
        rb = regret_at(b_runs, budget, "first")["regret"].to_numpy()
    try:
        result = compare(ra * scale, rb * scale, equal_var=equal_var, level=level)
    except ValueError as exc:
        raise ValueError(f"{where}, pair {a} - {b}: {exc}") from None
    return {
        "space": space,
        "a": a,
        "b": b,
        "pair": f"{a} - {b}",
        "budget": budget,
        "n_a": result.n_a,
        "n_b": result.n_b,
        "mean_diff": result.mean_diff,
        "pooled_sd": result.pooled_sd,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "statistic": result.statistic,
        "pvalue": result.pvalue,
        "cohen_d": result.cohen_d,
        "prob_superiority": result.prob_superiority,
    }


def _rows_or_raise(rows: list[dict], frame: pd.DataFrame, pairs) -> pd.DataFrame:
    if not rows:
        present = sorted(map(str, frame["method"].unique()))
        raise ValueError(f"no pair of {list(pairs)} is present in any space; methods present: {present}")
    return pd.DataFrame(rows)


def _p_clause(p: float) -> str:
    """'p=.03', 'p=.0004', 'p < .0001': as small a p as the test gives, never 'p=0.00'."""
    text = _pvalue(p)
    return f"p {text}" if text.startswith("<") else f"p={text}"


def _pair_cells(result: pd.DataFrame, header, first_cells, digits: int, key=("space",)) -> str:
    """Markdown: one row per `key` (first cells from `first_cells(row)`), one column per pair."""
    pair_names = list(dict.fromkeys(result["pair"]))
    lines: dict[tuple, list[str]] = {}
    cells: dict[tuple, str] = {}
    for r in result.itertuples(index=False):
        k = tuple(getattr(r, c) for c in key)
        lines.setdefault(k, first_cells(r))
        cells[(k, r.pair)] = (
            f"{_num(r.mean_diff, digits)} ± {_num(r.pooled_sd, digits)}"
            f" ({_p_clause(r.pvalue)}, d={_num(r.cohen_d, 2, sign=True)})"
        )
    body = [[*first, *(cells.get((k, p), "") for p in pair_names)] for k, first in lines.items()]
    return markdown_table([*header, *pair_names], body)


# --------------------------------------------------------------------------- tables 6.1-6.3


BONE_AGE_COLUMNS = (  # what bone_age_report needs; patient_id is optional
    "model",
    "sex",
    "chronological_age",
    "bone_age",
    "predicted",
    "pathological",
    "predicted_pathological",
)


def _sex(values: pd.Series) -> np.ndarray:
    text = values.astype(str).str.strip().str.upper().str[:1]
    bad = sorted(set(values[~text.isin(["F", "M"])].astype(str)))
    if bad:
        raise ValueError(f"column 'sex' must hold F/M (or female/male), got {bad[:5]}")
    return text.to_numpy()


def _subgroups(sex: np.ndarray, age: np.ndarray) -> list[tuple[str, str, str, np.ndarray]]:
    """(label, sex, age bin, mask): all, F, M, then F and M by chronological-age bin."""
    groups = [("all", "all", "all", np.ones(len(sex), dtype=bool))]
    for s in ("F", "M"):
        groups.append((s, s, "all", sex == s))
    for s in ("F", "M"):
        for lo, hi, label in AGE_BINS:
            upper = age <= hi if label.endswith("]") else age < hi
            groups.append((f"{s}{label}", s, label, (sex == s) & (age >= lo) & upper))
    return groups


def bone_age_report(
    predictions,
    level: float = 0.90,
    n_resamples: int = 10_000,
    seed: int = 0,
    method: str = "bca",
    digits: int = 2,
) -> Report:
    """Tables 6.1-6.3: MAE, sensitivity and specificity with bootstrap CIs, by model and sub-group.

    Input columns, one row per exam: model, sex (F/M), chronological_age (years), bone_age
    (reference, months), predicted (months), pathological (reference call, bool) and
    predicted_pathological (the model's call, bool); optional patient_id (then whole patients are
    resampled). Sub-groups: all, F, M, and each sex by chronological age [5,9[, [9,13[, [13,17].
    Intervals: bootstrap at `level` (90% in the thesis), seeded. Output columns: model, subgroup,
    sex, age_bin, n, metric (mae, sensitivity, specificity), estimate, ci_low, ci_high; a metric
    undefined in a sub-group (no pathological case for sensitivity) has NaN values.
    """
    level = check_level(level)
    frame = to_pandas(predictions, BONE_AGE_COLUMNS, "bone-age input")
    if len(frame) == 0:
        raise ValueError("bone-age input is empty")
    rows = []
    for model, exams in frame.groupby("model", sort=False):
        sex = _sex(exams["sex"])
        age = exams["chronological_age"].to_numpy(dtype=np.float64)
        errors = exams["predicted"].to_numpy(dtype=np.float64) - exams["bone_age"].to_numpy(dtype=np.float64)
        truth = exams["pathological"].to_numpy()
        call = exams["predicted_pathological"].to_numpy()
        patients = exams["patient_id"].to_numpy() if "patient_id" in exams.columns else None
        for label, s, age_bin, mask in _subgroups(sex, age):
            n = int(mask.sum())
            for metric in ("mae", "sensitivity", "specificity"):
                x = errors[mask] if metric == "mae" else (truth[mask], call[mask])
                groups = None if patients is None else patients[mask]
                estimate = low = high = float("nan")
                if n >= 2:
                    try:
                        r = bootstrap_ci(x, metric, level, method, n_resamples, seed, groups)
                        estimate, low, high = r.estimate, r.low, r.high
                    except ValueError as exc:
                        if "undefined" not in str(exc):
                            raise ValueError(f"model {model!r}, sub-group {label}: {exc}") from None
                rows.append(
                    {
                        "model": model,
                        "subgroup": label,
                        "sex": s,
                        "age_bin": age_bin,
                        "n": n,
                        "metric": metric,
                        "estimate": estimate,
                        "ci_low": low,
                        "ci_high": high,
                    }
                )
    result = pd.DataFrame(rows)
    return Report("bone_age", to_arrow(result), _bone_age_markdown(result, level, digits))


def _bone_age_markdown(result: pd.DataFrame, level: float, digits: int) -> str:
    def cell(model, subgroup, metric) -> str:
        hit = result[
            (result["model"] == model) & (result["subgroup"] == subgroup) & (result["metric"] == metric)
        ]
        if len(hit) == 0 or math.isnan(hit["estimate"].iloc[0]):
            return "n/a"
        r = hit.iloc[0]
        return f"{_num(r.estimate, digits)} [{_num(r.ci_low, digits)}, {_num(r.ci_high, digits)}]"

    def count(subgroup) -> int:
        return int(result.loc[result["subgroup"] == subgroup, "n"].iloc[0])

    models = list(dict.fromkeys(result["model"]))
    parts = [
        f"MAE (months), sensitivity and specificity over all patients, {level:.0%} bootstrap CI.",
        markdown_table(
            ["model", "MAE", "Sensitivity", "Specificity"],
            [[str(m), *(cell(m, "all", k) for k in ("mae", "sensitivity", "specificity"))] for m in models],
        ),
    ]
    for s, name in (("F", "girls"), ("M", "boys")):
        labels = [f"{s}{label}" for _, _, label in AGE_BINS] + [s]
        header = ["model", *(f"{lab} (N={count(lab)})" for lab in labels)]
        parts.append(f"MAE (months) across {name} by chronological age, {level:.0%} bootstrap CI.")
        parts.append(
            markdown_table(header, [[str(m), *(cell(m, lab, "mae") for lab in labels)] for m in models])
        )
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- table 2.1


def readers_report(
    readings,
    lower_is_better: Iterable[str] = (),
    level: float = 0.95,
    aided: str = "aided",
    unaided: str = "unaided",
    digits: int = 3,
) -> Report:
    """Table 2.1: per metric, readers' mean ± SD unaided and aided, the difference and a paired test.

    Input columns: reader, metric, condition (`unaided` / `aided`), value; one row per reader,
    metric and condition, every reader measured in both conditions. Difference = aided - unaided
    with its `level` two-sided paired-t CI; p from a one-sided paired t-test in the direction of
    improvement: aided > unaided, or aided < unaided for the metrics in `lower_is_better`
    (false positives per patient, reading time). Output columns: metric, n_readers, unaided_mean,
    unaided_sd, aided_mean, aided_sd, diff, ci_low, ci_high, alternative, pvalue, cohen_d.
    """
    level = check_level(level)
    lower = set(lower_is_better)
    frame = to_pandas(readings, ("reader", "metric", "condition", "value"), "reader-study input")
    if len(frame) == 0:
        raise ValueError("reader-study input is empty")
    conditions = set(frame["condition"])
    unknown = sorted(map(str, conditions - {aided, unaided}))
    if unknown:
        raise ValueError(f"column 'condition' must be {unaided!r} or {aided!r}, got {unknown}")
    unknown_lower = sorted(lower - set(frame["metric"]))
    if unknown_lower:
        raise ValueError(f"lower_is_better names metric(s) not in the input: {unknown_lower}")
    duplicated = frame.duplicated(["reader", "metric", "condition"])
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        raise ValueError(
            f"reader {first['reader']!r} has several values for metric {first['metric']!r}, "
            f"condition {first['condition']!r}"
        )
    rows = []
    for metric, values in frame.groupby("metric", sort=False):
        wide = values.pivot(index="reader", columns="condition", values="value")
        for condition in (aided, unaided):
            if condition not in wide.columns:
                wide[condition] = np.nan
        incomplete = wide.index[wide[[aided, unaided]].isna().any(axis=1)].tolist()
        if incomplete:
            raise ValueError(f"metric {metric!r}: reader(s) {incomplete} lack an aided or unaided value")
        alternative = "less" if metric in lower else "greater"
        try:
            r = compare(
                wide[aided].to_numpy(float),
                wide[unaided].to_numpy(float),
                paired=True,
                alternative=alternative,
                level=level,
            )
        except ValueError as exc:
            raise ValueError(f"metric {metric!r}: {exc}") from None
        rows.append(
            {
                "metric": metric,
                "n_readers": r.n_a,
                "unaided_mean": r.mean_b,
                "unaided_sd": r.sd_b,
                "aided_mean": r.mean_a,
                "aided_sd": r.sd_a,
                "diff": r.mean_diff,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "alternative": alternative,
                "pvalue": r.pvalue,
                "cohen_d": r.cohen_d,
            }
        )
    result = pd.DataFrame(rows)
    body = []
    for r in result.itertuples(index=False):
        # Decimals for `digits` significant digits of the larger mean, the same across the row.
        scale = max(abs(r.unaided_mean), abs(r.aided_mean))
        dec = max(0, digits - 1 - math.floor(math.log10(scale))) if scale > 0 else digits
        p = _pvalue(r.pvalue)
        body.append(
            [
                str(r.metric),
                f"{r.unaided_mean:.{dec}f} ± {r.unaided_sd:.{dec}f}",
                f"{r.aided_mean:.{dec}f} ± {r.aided_sd:.{dec}f}",
                f"{r.diff:+.{dec}f} [{r.ci_low:.{dec}f}, {r.ci_high:.{dec}f}]",
                f"p {p}" if p.startswith("<") else f"p = {p}",
            ]
        )
    title = (
        f"Readers without and with AI: mean ± SD, aided - unaided difference with its {level:.0%} CI,"
        " one-sided paired t-test p in the direction of improvement."
    )
    header = ["Metric", "Unaided", "Aided", "Absolute Difference", "p"]
    return Report("readers", to_arrow(result), title + "\n\n" + markdown_table(header, body))
