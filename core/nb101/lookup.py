"""One cell at a time, in plain Python values: the lookups behind NB-101's own query API.

`Benchmark` answers column queries over many hashes with numpy arrays. `CellLookup` answers
what `nasbench.api.NASBench` is asked a million times in a search loop: one hash, one budget,
one repeat, as Python floats and ints. It holds the benchmark's numbers in a few numpy arrays
(a row's repeats side by side, 8 values each) and one dict from hash to cell number, about 6x
less memory than NB-101's nested dicts, and builds in well under a second for 423,624 cells.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from core.nb101.benchmark import VALUE_COLUMNS
from core.nb101.space import MAX_INTERIOR, MAX_VERTICES, decode_matrices
from core.nb101.spec import INPUT, OPS, OUTPUT

# Value order inside a repeat: final train/valid/test/time, then the same at halfway
# (VALUE_COLUMNS); REPEAT_KEYS is the key order of NB-101's computed_stats repeat dicts.
REPEAT_KEYS = (
    "halfway_training_time",
    "halfway_train_accuracy",
    "halfway_validation_accuracy",
    "halfway_test_accuracy",
    "final_training_time",
    "final_train_accuracy",
    "final_validation_accuracy",
    "final_test_accuracy",
)
_REPEAT_ORDER = [VALUE_COLUMNS.index(key) for key in REPEAT_KEYS]
_OP_NAMES = (*OPS, None)


class CellLookup:
    """Per-cell, per-budget, per-repeat lookups over a benchmark table (layout of benchmark.py)."""

    def __init__(self, table: pa.Table):
        hashes = table["hash"].to_numpy(zero_copy_only=False).astype("U32")
        epochs = table["epochs"].to_numpy().astype(np.int64)
        cells, first, cell_of_row = np.unique(hashes, return_index=True, return_inverse=True)
        self.hashes = cells
        self._index = dict(zip(cells.tolist(), range(len(cells))))
        self.budgets = sorted(int(e) for e in np.unique(epochs))
        self._rows = {}
        for e in self.budgets:
            rows = np.full(len(cells), -1, dtype=np.int64)
            in_budget = np.flatnonzero(epochs == e)
            rows[cell_of_row[in_budget]] = in_budget
            self._rows[e] = rows
        columns = [table[name].combine_chunks().flatten() for name in VALUE_COLUMNS]
        # (rows, repeats, 8): a repeat's values side by side, in VALUE_COLUMNS order
        self._values = np.stack([np.asarray(c).reshape(table.num_rows, -1) for c in columns], axis=-1)
        self._repeats = table["repeats"].to_numpy().astype(np.int64)
        self._vertices = table["num_vertices"].to_numpy()[first].astype(np.int64)
        self._params = table["trainable_parameters"].to_numpy()[first].astype(np.int64)
        self._ops = np.asarray(table["ops"].combine_chunks().flatten()).reshape(-1, MAX_INTERIOR)[first]
        self._matrices = _padded_matrices(table["adj_bits"].to_numpy()[first], self._vertices)

    # ---- identity ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, module_hash) -> bool:
        return module_hash in self._index

    def keys(self):
        """The hashes, as a dict view (what NB-101's `hash_iterator` returns), sorted."""
        return self._index.keys()

    def cell(self, module_hash: str) -> int:
        """The cell number of a hash; KeyError (naming the hash) when the store lacks it."""
        try:
            return self._index[module_hash]
        except KeyError:
            raise KeyError(f"cell {module_hash!r} is not in this benchmark ({len(self):,} cells)") from None
        except TypeError:
            raise KeyError(f"not a module hash: {module_hash!r}") from None

    # ---- fixed statistics ----------------------------------------------------------------
    def matrix(self, cell: int) -> np.ndarray:
        """The stored (canonical) adjacency of a cell, int8 as NB-101's file parses it; a new array."""
        n = int(self._vertices[cell])
        return self._matrices[cell, :n, :n].copy()

    def operations(self, cell: int) -> list[str]:
        """The stored op names of a cell, input and output included."""
        n = int(self._vertices[cell])
        return [INPUT, *[_OP_NAMES[op] for op in self._ops[cell, : n - 2].tolist()], OUTPUT]

    def parameters(self, cell: int) -> int:
        return int(self._params[cell])

    def fixed(self, cell: int) -> dict:
        """NB-101's fixed_stats dict: module_adjacency, module_operations, trainable_parameters."""
        return {
            "module_adjacency": self.matrix(cell),
            "module_operations": self.operations(cell),
            "trainable_parameters": self.parameters(cell),
        }

    # ---- computed statistics -------------------------------------------------------------
    def row(self, cell: int, epochs: int) -> int:
        """The table row of a cell at a budget; KeyError when the cell was not trained that long."""
        rows = self._rows.get(epochs)
        row = -1 if rows is None else rows.item(cell)
        if row < 0:
            raise KeyError(epochs)
        return row

    def repeat(self, row: int, repeat: int) -> list[float]:
        """The 8 values of one repeat of a row, in VALUE_COLUMNS order; IndexError past the repeats."""
        if not 0 <= repeat < self._repeats.item(row):
            raise IndexError(f"repeat {repeat} of a row with {self._repeats.item(row)} repeats")
        return self._values[row, repeat].tolist()

    def computed(self, cell: int) -> dict[int, list[dict]]:
        """NB-101's computed_stats: {epochs: [one dict per repeat, REPEAT_KEYS]}, budgets ascending."""
        out = {}
        for e in self.budgets:
            row = self._rows[e].item(cell)
            if row < 0:
                continue
            repeats = self._values[row, : self._repeats.item(row)][:, _REPEAT_ORDER].tolist()
            out[e] = [dict(zip(REPEAT_KEYS, values)) for values in repeats]
        return out

    def nbytes(self) -> int:
        """Bytes held in numpy arrays (the dict of hashes comes on top)."""
        arrays = [self.hashes, self._values, self._repeats, self._vertices, self._params, self._ops]
        return sum(a.nbytes for a in arrays + [self._matrices, *self._rows.values()])


def _padded_matrices(bits: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """(cells, 7, 7) int8 adjacencies from adj_bits; a cell of n vertices fills [:n, :n]."""
    out = np.zeros((len(bits), MAX_VERTICES, MAX_VERTICES), dtype=np.int8)
    for n in np.unique(vertices):
        idx = np.flatnonzero(vertices == n)
        out[idx, :n, :n] = decode_matrices(bits[idx], int(n))
    return out
