"""The cells of a search space as a table, and seeded sampling from it (uniform or pro-rata)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from core.nb101.benchmark import Benchmark
from core.nb101.space import cell_spec, enumerate_space
from core.nb101.spec import CellSpec


def space_cells(bench: Benchmark, subspace: str) -> pa.Table:
    """Tabulated cells of a sub-space with their 16-filter parameter counts (for PRO-RATA)."""
    cells = bench.cells(subspace=subspace)
    if cells.num_rows == 0:
        raise ValueError(f"sub-space {subspace} has no cells in {bench.source}")
    max_v = int(pa.compute.max(cells["num_vertices"]).as_py())
    space = enumerate_space(max_vertices=max_v)
    known = space["hash"].to_numpy(zero_copy_only=False)
    wanted = cells["hash"].to_numpy(zero_copy_only=False)
    pos = np.minimum(np.searchsorted(known, wanted), len(known) - 1)
    if not (known[pos] == wanted).all():
        raise ValueError(f"{int((known[pos] != wanted).sum())} cells of {bench.source} are not NB-101 cells")
    params = space["params_16"].to_numpy()[pos]
    return cells.select(["hash", "num_vertices", "adj_bits", "ops"]).append_column(
        "params_16", pa.array(params)
    )


class CellSampler:
    """Draws cells of a space with a numpy Generator: uniformly, or pro-rata to parameters."""

    def __init__(self, cells: pa.Table, seed: int, pro_rata: bool = False):
        self.cells = cells
        self.rng = np.random.default_rng(seed)
        if pro_rata:
            weights = cells["params_16"].to_numpy().astype(np.float64)
            self.p = weights / weights.sum()
        else:
            self.p = None
        self._adj = cells["adj_bits"].to_numpy()
        self._nv = cells["num_vertices"].to_numpy()
        self._ops = np.asarray(cells["ops"].combine_chunks().flatten()).reshape(cells.num_rows, -1)
        self._specs: dict[int, CellSpec] = {}

    def spec(self, row: int) -> CellSpec:
        if row not in self._specs:
            self._specs[row] = cell_spec(int(self._adj[row]), int(self._nv[row]), self._ops[row].tolist())
        return self._specs[row]

    def sample(self) -> CellSpec:
        return self.spec(int(self.rng.choice(self.cells.num_rows, p=self.p)))

    def unique(self, n: int) -> list[int]:
        """n distinct rows drawn uniformly (the cells a correlation study scores)."""
        n = min(n, self.cells.num_rows)
        return sorted(self.rng.choice(self.cells.num_rows, n, replace=False).tolist())
