"""Chapter 4's tables and figures from the units' results: the baselines' final regret and
fig. 4.2, table 4.3 with the scatter plots, the one-shot comparison (tables 4.4/4.5, thesis
4.3.3's rule), the same differences at larger budgets, and the power report. Each returns its
markdown (or table) and the files to log on the parent run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cluster.nb101.config import BaselinesConfig


def baselines_report(config: BaselinesConfig, curves: pa.Table, out_dir: Path) -> tuple[pa.Table, list[Path]]:
    """Mean final regret with 95% CI per space and method, and fig. 4.2 per space (log-log)."""
    from stats import mean_ci
    from stats.tables import Report, to_markdown

    frame = curves.to_pandas()
    rows, files = [], []
    for space, group in frame.groupby("space", sort=False):
        last = group.sort_values("step").groupby("run_id").tail(1)
        for method in config.methods:
            runs = last[last["method"] == method]
            ci = mean_ci(runs["regret"].to_numpy())
            row = {
                "space": space,
                "method": method,
                "seeds": len(runs),
                "evaluations": int(runs["step"].median()),
                "final_regret_mean": ci.mean,
                "ci95_low": ci.ci_low,
                "ci95_high": ci.ci_high,
                "sim_time_mean_s": float(runs["time"].mean()),
            }
            rows.append(row)
        files.append(
            _regret_figure(
                group,
                out_dir / f"regret_{space}.png",
                title=f"{space}: test regret vs simulated time ({config.validation} validation)",
                xlabel="simulated time (s, benchmark training time)",
            )
        )
    table = pa.Table.from_pylist(rows)
    summary = Report("final_regret", table, to_markdown(table))
    files += list(summary.write(out_dir).values())
    files.append(_parquet(curves, out_dir / "regret_steps.parquet"))
    return table, files


def correlation_report(study, proxies: pa.Table, out_dir: Path) -> tuple[str, list[Path]]:
    """Table 4.3 (mean Spearman and 95% CI over supernets, exclusions flagged) and the scatter plots."""
    from stats.figures import proxy_scatter_figure, save_figure
    from stats.tables import correlation_report as correlation_table

    out_dir.mkdir(parents=True, exist_ok=True)
    rep = correlation_table(proxies.select(["space", "variant", "replicate", "proxy", "target"]))
    files = list(rep.write(out_dir).values())
    frame = proxies.to_pandas()
    for space in study.spaces:
        mode = "BNS-FT" if "BNS-FT" in set(frame["variant"]) else frame["variant"].iloc[0]
        rows = frame[(frame["space"] == space) & (frame["variant"] == mode) & (frame["replicate"] == 0)]
        if rows.empty:
            continue
        for feature, label in (
            ("residual", "input->output edge"),
            ("conv3x3_first", "conv3x3 on first vertex"),
        ):
            fig = proxy_scatter_figure(
                rows["target"].to_numpy(),
                rows["proxy"].to_numpy(),
                highlight=rows[feature].to_numpy(bool),
                highlight_label=label,
                title=f"{space}, {mode}, supernet 0",
            )
            files.append(save_figure(fig, out_dir / f"scatter_{space}_{feature}.png"))
    files.append(_parquet(proxies, out_dir / "proxies.parquet"))
    return rep.markdown, files


def power_report(oneshot: pa.Table, ws_seeds: int, baseline_seeds: int) -> pa.Table:
    """For each comparison: WS seeds needed for power 0.8 at the observed d, and whether the
    sweep had them."""
    from stats import runs_needed

    rows = []
    for r in oneshot.to_pylist():
        d = r["cohen_d"]
        try:
            needed = runs_needed(abs(d), n_other=baseline_seeds) if np.isfinite(d) and d != 0 else None
        except ValueError:
            needed = None  # out of reach against this many baseline runs
        rows.append(
            {
                "space": r["space"],
                "pair": r["pair"],
                "cohen_d": d,
                "ws_seeds": ws_seeds,
                "baseline_seeds": baseline_seeds,
                "ws_seeds_needed": needed,
                "enough": bool(needed is not None and ws_seeds >= needed),
            }
        )
    return pa.Table.from_pylist(rows)


def sweep_report(sweep, results: dict, out_dir: Path) -> tuple[str, list[Path]]:
    """Tables 4.3, 4.4/4.5 (and at larger budgets) and the power report, fig. 4.2 per space;
    files for the parent run. The clock every time is charged on heads the report."""
    from stats.tables import Report, budgets_report, oneshot_report, to_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    files, parts = [], [f"Times: {sweep.clock.describe()}"]
    trajectories = sweep.trajectories(results)
    try:
        oneshot = oneshot_report(trajectories)
    except ValueError as err:  # e.g. a baseline run has no evaluation yet at the WS budget
        parts.append(f"## One-shot regret differences (tables 4.4 / 4.5)\n\nnot computable: {err}")
    else:
        files += list(oneshot.write(out_dir).values())
        parts.append("## One-shot regret differences (tables 4.4 / 4.5)\n\n" + oneshot.markdown)
        later = budgets_report(trajectories)
        files += list(later.write(out_dir).values())
        parts.append("## Given more time: the differences at larger budgets\n\n" + later.markdown)
        table = power_report(oneshot.table, sweep.config.ws_seeds, sweep.config.baseline_seeds)
        power = Report("power", table, to_markdown(table))
        files += list(power.write(out_dir).values())
        parts.append("## Power (two-sided t-test, alpha 0.05, power 0.8)\n\n" + power.markdown)
    if sweep.study.evaluations:
        markdown, corr_files = correlation_report(sweep.study, sweep.study.proxies(results), out_dir)
        files += corr_files
        parts.append("## Correlation (table 4.3)\n\n" + markdown)
    clock = sweep.clock.name
    for space, group in trajectories.to_pandas().groupby("space", sort=False):
        files.append(
            _regret_figure(
                group,
                out_dir / f"regret_{space}.png",
                title=f"{space}: test regret vs time ({clock} clock)",
                xlabel=f"time (s on the {clock} clock: cells' training, supernet, proxies)",
            )
        )
    files.append(_parquet(trajectories, out_dir / "trajectories.parquet"))
    markdown = "\n\n".join(parts) + "\n"
    (out_dir / "report.md").write_text(markdown)
    files.append(out_dir / "report.md")
    return markdown, files


def _regret_figure(group, path: Path, title: str, xlabel: str) -> Path:
    """Fig. 4.2 for one space: mean regret per method on a log grid of times, from the time all
    its runs have started, with CI bands; each run's first evaluation as a marker."""
    from stats.figures import regret_figure, save_figure
    from stats.regret import first_values, log_grid, regret_curves

    grid = log_grid(group["time"].to_numpy(), 200)
    curves = regret_curves(group, by="method", grid=grid, all_started=True)
    starts = {}
    for method, runs in group.groupby("method", sort=False):
        first = first_values(runs)
        starts[method] = (first["time"].to_numpy(), first["regret"].to_numpy())
    return save_figure(regret_figure(curves, title=title, xlabel=xlabel, starts=starts), path)


def _parquet(table: pa.Table, path: Path) -> Path:
    pq.write_table(table, path, compression="zstd")
    return path
