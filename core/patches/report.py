"""The NAS run's results as tables and figures: the search trajectory, table 5.1, figs. 5.1 / 5.2.

Inputs are plain records (dicts), so the report can be rebuilt from MLflow or from a checkpoint
without Ray. Tables are written as Markdown, CSV and Parquet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TRAJECTORY_COLUMNS = (
    "index",
    "key",
    "arch",
    "genome",
    "mutation_probability",
    "aufroc_val",
    "params",
    "macs",
    "cached",
    "cluster",
    "attempts",
    "failed_on",
    "seconds",
    "run_id",
)
TABLE_COLUMNS = (
    "network",
    "aufroc_test",
    "aufroc_val",
    "params",
    "macs",
    "macs_reference",
    "weights",
    "arch",
    "run_id",
)


def trajectory_frame(records: list[dict]) -> pd.DataFrame:
    """One row per told evaluation, in evaluation order."""
    rows = [{c: r.get(c) for c in TRAJECTORY_COLUMNS} for r in records if r.get("aufroc_val") is not None]
    frame = pd.DataFrame(rows, columns=list(TRAJECTORY_COLUMNS))
    frame["genome"] = frame["genome"].map(lambda g: ",".join(map(str, g)) if g is not None else None)
    frame["failed_on"] = frame["failed_on"].map(lambda f: ",".join(map(str, f or [])))
    return frame.sort_values("index").reset_index(drop=True)


def top_networks(trajectory: pd.DataFrame, k: int) -> pd.DataFrame:
    """The k best distinct networks (by key) by validation AUFROC; ties go to the earliest."""
    first = trajectory.sort_values("index").drop_duplicates("key")
    return first.sort_values(["aufroc_val", "index"], ascending=[False, True]).head(k).reset_index(drop=True)


def _millions(v) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v / 1e6:.2f}M"


def _billions(v) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v / 1e9:.3f}B"


def _score(v) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"


def table_markdown(table: pd.DataFrame, input_size: int, reference_size: int | None, note: str = "") -> str:
    """Table 5.1 as Markdown (test AUFROC, #params, #multiply-adds)."""
    ref = f" | #MAdds@{reference_size}" if reference_size else ""
    lines = [
        f"| Network | AUFROC (test) | AUFROC (val) | #Params | #MAdds@{input_size}{ref} | Weights |",
        "|---|---|---|---|---|---" + ("|---" if reference_size else "") + "|",
    ]
    for r in table.itertuples():
        cells = [
            r.network,
            _score(r.aufroc_test),
            _score(r.aufroc_val),
            _millions(r.params),
            _billions(r.macs),
        ]
        if reference_size:
            cells.append(_billions(r.macs_reference))
        cells.append(r.weights)
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    text = "\n".join(lines)
    return f"{text}\n\n{note}" if note else text


def trajectory_summary(trajectory: pd.DataFrame) -> dict:
    """Headline numbers of a search: evaluations, trained vs cached, start and best scores."""
    if trajectory.empty:
        return {"evaluations": 0}
    start = trajectory[trajectory["index"] == 0]
    best = trajectory.loc[trajectory["aufroc_val"].idxmax()]
    return {
        "evaluations": int(len(trajectory)),
        "evaluations_trained": int((~trajectory["cached"].astype(bool)).sum()),
        "evaluations_cached": int(trajectory["cached"].astype(bool).sum()),
        "distinct_networks": int(trajectory["key"].nunique()),
        "candidates_retried": int((trajectory["attempts"].fillna(1) > 1).sum()),
        "start_aufroc_val": float(start["aufroc_val"].iloc[0]) if len(start) else float("nan"),
        "best_aufroc_val": float(best["aufroc_val"]),
        "best_index": int(best["index"]),
        "best_params": float(best["params"]),
    }


def write_table(frame: pd.DataFrame, out_dir: Path, stem: str, markdown: str | None = None) -> list[Path]:
    """frame as <stem>.csv and <stem>.parquet (and <stem>.md when given) in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.csv", out_dir / f"{stem}.parquet"]
    frame.to_csv(paths[0], index=False)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), paths[1])
    if markdown is not None:
        paths.append(out_dir / f"{stem}.md")
        paths[-1].write_text(markdown + "\n")
    return paths


def figures(trajectory: pd.DataFrame, out_dir: Path) -> list[Path]:
    """fig5_1_score_by_evaluation.png and fig5_2_score_by_parameters.png."""
    from core.patches.figures import save, score_by_evaluation, score_by_parameters

    x = trajectory["index"].to_numpy()
    y = trajectory["aufroc_val"].to_numpy(np.float64)
    fig1 = score_by_evaluation(x, y, title="(1+1)-ES over OFA: validation AUFROC per evaluation")
    fig2 = score_by_parameters(
        trajectory["params"].to_numpy(np.float64), y, x == 0, title="validation AUFROC vs parameters"
    )
    return [
        save(fig1, out_dir / "fig5_1_score_by_evaluation.png"),
        save(fig2, out_dir / "fig5_2_score_by_parameters.png"),
    ]
