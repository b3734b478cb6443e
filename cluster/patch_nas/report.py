"""The report of a fracture-NAS run: the trajectory, figs. 5.1 / 5.2, table 5.1, headline numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cluster.patch_nas.config import FractureNASConfig
from cluster.patch_nas.final import FinalRow
from cluster.patch_nas.jobs import TimmModel

ORDER = {"baseline": 0, "reference": 1, "nas": 2, "scratch": 3}


@dataclass(frozen=True)
class Report:
    summary: dict  # headline numbers (the finite ones become the parent run's metrics)
    files: list[Path]
    markdown: str  # table 5.1 with its note ("" without a final stage)

    @property
    def headline(self) -> str:
        """Evaluations trained and cached, the start and the best validation AUFROC."""
        s, nan = self.summary, float("nan")
        return (
            f"{s.get('evaluations', 0)} evaluations ({s.get('evaluations_trained', 0)} trained, "
            f"{s.get('evaluations_cached', 0)} cached); best validation AUFROC "
            f"{s.get('best_aufroc_val', nan):.4f} (start {s.get('start_aufroc_val', nan):.4f})"
        )

    @property
    def metrics(self) -> dict:
        return {k: v for k, v in self.summary.items() if isinstance(v, int | float) and np.isfinite(v)}


def build_report(
    config: FractureNASConfig, records: list[dict], told: int, final: list[FinalRow], data_note: str
) -> Report:
    """Write the trajectory, the figures and table 5.1 to `config.output_dir`."""
    from core.patches.report import figures, trajectory_frame, trajectory_summary, write_table

    out = Path(config.output_dir)
    trajectory = trajectory_frame(records)
    files = write_table(trajectory, out, "trajectory") + figures(trajectory, out)
    summary = trajectory_summary(trajectory)
    summary["evaluations_told"] = told
    summary["worker_hours"] = float(sum(r.get("worker_seconds") or 0.0 for r in records)) / 3600
    markdown = ""
    if final:
        table, markdown = final_table(config, final, data_note)
        files += write_table(table, out, "table5_1", markdown)
        for row in table.itertuples():
            name = row.network.replace(" ", "_").replace("•", "scratch").replace("#", "")
            summary[f"final_{name}_aufroc_test"] = row.aufroc_test
    return Report(summary, files, markdown)


def final_table(config: FractureNASConfig, final: list[FinalRow], data_note: str) -> tuple[pd.DataFrame, str]:
    """Table 5.1 (baselines, reference, the searched networks, the from-scratch rows) and its Markdown."""
    from core.patches.report import table_markdown

    c = config
    rows = []
    for row in sorted(final, key=lambda r: (ORDER[r.kind], r.network != "FractNet")):
        m, p = row.result.metrics, row.job.log_params
        rows.append(
            {
                "network": row.network,
                "aufroc_test": m.get("aufroc_test"),
                "aufroc_val": m.get("aufroc_val"),
                "params": m.get("params"),
                "macs": m.get("macs"),
                "macs_reference": m.get("macs_reference"),
                "weights": weights_note(c, row),
                "arch": p.get("arch", p.get("network", "")),
                "run_id": row.result.run_id,
            }
        )
    reference = f" and {c.final.macs_input_size}x{c.final.macs_input_size}" if c.final.macs_input_size else ""
    note = (
        f"Test AUFROC (0.02-0.5 FP/image, study-wise), trainable parameters with a 2-class head, "
        f"multiply-adds of one image at {c.data.input_size}x{c.data.input_size}{reference}"
        f"; {c.final.epochs} epochs each. NAS #k: the k-th best network of the search; FractNet: "
        "the one of them with the best validation AUFROC after retraining. "
        f"Data: {data_note}."
    )
    table = pd.DataFrame(rows)
    return table, table_markdown(table, c.data.input_size, c.final.macs_input_size, note)


def weights_note(config: FractureNASConfig, row: FinalRow) -> str:
    """Where a row's starting weights came from."""
    if row.kind == "scratch":
        return "none (from scratch)"
    if isinstance(row.job.model, TimmModel):
        return "ImageNet (local file)" if row.job.model.checkpoint else "random init (no local weights)"
    if config.supernet.checkpoint:
        return "OFA ImageNet supernet"
    return f"random-init supernet (seed {config.supernet.seed}; no OFA checkpoint)"
