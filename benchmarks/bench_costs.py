"""Cost-table work: predicting a whole space from a fitted model, and timing a cell.

1. `cell_features` computes each distinct adjacency matrix's per-op coefficients once and gathers
   them by the cells' op labels; the baseline computes every cell's features on its own (the same
   arithmetic, `_matrix_coefficients` per cell). Both run on the same 20,000 cells of the real
   NB-101 subset under the thesis recipe in the same run; the outputs must be identical. Prints
   cells/s for each and the ratio, and the projected time for the 423,624 cells of NB-101.
2. `time_cells` on 20 cells of the embedded default (thread CPU time, one thread): seconds a
   cell, against the passes it measures (what the table's build spends beyond its measures).
"""

from __future__ import annotations

import numpy as np
import torch
from _timing import best_time

from core.nb101.benchmark import Benchmark
from core.nb101.costs import FEATURES, TimingRecipe, _matrix_coefficients, cell_features, time_cells
from core.nb101.space import decode_matrices

N_CELLS = 20_000
THESIS = TimingRecipe(16, 3, 3, 3, 32, 256)
EMBEDDED = TimingRecipe(8, 2, 1, 1, 8, 64)


def per_cell(cells) -> np.ndarray:
    """The baseline: every cell's features computed on their own."""
    out = np.zeros((cells.num_rows, len(FEATURES)))
    out[:, 0] = 1.0
    ops = np.asarray(cells["ops"].combine_chunks().flatten()).reshape(cells.num_rows, -1)
    for i, (adj, n) in enumerate(zip(cells["adj_bits"].to_pylist(), cells["num_vertices"].to_pylist())):
        const, coef = _matrix_coefficients(decode_matrices(np.array([adj]), n)[0], THESIS)
        out[i, 1:] = const + sum(coef[:, t, ops[i, t - 1]] for t in range(1, n - 1))
    return out


def main() -> None:
    cells = Benchmark.real_subset().cells()
    cells = cells.take(np.sort(np.random.default_rng(0).choice(cells.num_rows, N_CELLS, replace=False)))
    t_base, base = best_time(lambda: per_cell(cells), 1)
    t_grouped, grouped = best_time(lambda: cell_features(cells, THESIS))
    assert np.array_equal(base, grouped), "feature outputs differ"
    print(f"{N_CELLS:,} real NB-101 cells, identical features from both")
    print(f"per cell (baseline):        {t_base:.2f} s  {N_CELLS / t_base:>9,.0f} cells/s")
    print(f"grouped by matrix:          {t_grouped:.2f} s  {N_CELLS / t_grouped:>9,.0f} cells/s")
    print(f"ratio: {t_base / t_grouped:.1f}x; 423,624 cells: {423_624 / N_CELLS * t_grouped:.1f} s")

    torch.set_num_threads(1)
    small = Benchmark.default().cells().slice(0, 20)
    t_time, table = best_time(lambda: time_cells(small, EMBEDDED, "cpu"), 1)
    measured = float((4 * table["step_s"].to_numpy() + 4 * table["forward_s"].to_numpy()).sum())
    print(
        f"time_cells, 20 embedded cells: {t_time / 20 * 1000:.0f} ms a cell; its 8 passes "
        f"(1 warm-up + 3 measures each) {measured / 20 * 1000:.0f} ms of thread CPU time: "
        f"ratio {t_time / measured:.1f}x"
    )


if __name__ == "__main__":
    main()
