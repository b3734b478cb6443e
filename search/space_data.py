"""One search space as flat numpy arrays read from a benchmark: what searches and regrets need.

Built once per (benchmark, sub-space) and shared by every search of a sweep (on Ray it goes
into the object store once). Rows are the tabulated cells of the sub-space, sorted by hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.nb101.benchmark import Benchmark
from core.nb101.space import cell_spec
from core.nb101.spec import CellSpec


@dataclass
class SpaceData:
    name: str
    epochs: int
    hashes: np.ndarray  # (N,) str
    num_vertices: np.ndarray  # (N,)
    adj_bits: np.ndarray  # (N,)
    ops: np.ndarray  # (N, 5)
    validation: np.ndarray  # (N, R) final validation accuracy per repeat
    training_time: np.ndarray  # (N, R) seconds per repeat
    test_mean: np.ndarray  # (N,) mean final test accuracy
    source: str = ""
    _index: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_benchmark(cls, bench: Benchmark, subspace: str = "FULL", epochs: int | None = None) -> SpaceData:
        cells = bench.cells(epochs=epochs, subspace=subspace)
        if cells.num_rows == 0:
            raise ValueError(f"sub-space {subspace} has no cells in {bench.source}")
        hashes = cells["hash"].to_numpy(zero_copy_only=False).astype(str)
        q = bench.query(hashes, epochs=epochs)
        return cls(
            name=subspace,
            epochs=int(cells["epochs"][0].as_py()),
            hashes=hashes,
            num_vertices=cells["num_vertices"].to_numpy(),
            adj_bits=cells["adj_bits"].to_numpy(),
            ops=np.asarray(cells["ops"].combine_chunks().flatten()).reshape(len(hashes), -1),
            validation=q["validation_accuracy"],
            training_time=q["training_time"],
            test_mean=np.nanmean(q["test_accuracy"], axis=1),
            source=bench.source,
        )

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def best_test(self) -> float:
        """Best mean test accuracy of the space: the zero of the regret (eq. 4.1)."""
        return float(self.test_mean.max())

    def row(self, cell_hash: str) -> int | None:
        """Row of a hash, None when the cell is not tabulated in this space."""
        if not self._index:
            self._index = {h: i for i, h in enumerate(self.hashes)}
        return self._index.get(cell_hash)

    def spec(self, row: int) -> CellSpec:
        return cell_spec(int(self.adj_bits[row]), int(self.num_vertices[row]), self.ops[row].tolist())


SUBSPACE_TESTS = {
    "FULL": lambda fan_in, residual: True,
    "RES": lambda fan_in, residual: residual,
    "NRES": lambda fan_in, residual: not residual,
    **{f"A{i}": (lambda fan_in, residual, i=i: fan_in == i) for i in range(1, 5)},
}


def in_subspace(spec: CellSpec, name: str) -> bool:
    """Whether a (valid) cell belongs to a named sub-space, from its structure alone."""
    return SUBSPACE_TESTS[name](int(spec.matrix[1:-1, -1].sum()), bool(spec.matrix[0, -1]))
