"""One cell at a time, in plain Python values: the lookups behind NB-101's own query API.

`Benchmark` answers column queries over many hashes with numpy arrays. `CellLookup` answers
what `nasbench.api.NASBench` is asked a million times in a search loop: one hash, one budget,
one repeat, as Python floats and ints. It reads the numbers straight from the Arrow table's
buffers (numpy views, no copy), adds one dict from hash to cell number and the cells' padded
7x7 matrices: about 5x less memory than NB-101's nested dicts, built in a fraction of a second
for 423,624 cells (no sorting: the table's rows are already sorted by budget and hash).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from core.nb101.benchmark import VALUE_COLUMNS, read_benchmark_table
from core.nb101.space import MAX_INTERIOR, MAX_VERTICES
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
        self.table = table  # the value arrays below are views of its buffers
        epochs = table["epochs"].to_numpy().astype(np.int64)
        self.budgets = sorted(int(e) for e in np.unique(epochs))
        blocks = {e: np.flatnonzero(epochs == e) for e in self.budgets}
        first, self._rows = _cells_and_rows(table["hash"], blocks)
        self._index = dict(zip(table["hash"].take(first).to_pylist(), range(len(first))))
        # one (rows, repeats) float64 array per value column, in VALUE_COLUMNS order
        self._values = [
            np.asarray(table[name].combine_chunks().flatten()).reshape(table.num_rows, -1)
            for name in VALUE_COLUMNS
        ]
        self._repeats = table["repeats"].to_numpy().astype(np.int64)
        self._vertices = table["num_vertices"].to_numpy()[first].astype(np.int64)
        self._params = table["trainable_parameters"].to_numpy()[first].astype(np.int64)
        self._ops = np.asarray(table["ops"].combine_chunks().flatten()).reshape(-1, MAX_INTERIOR)[first]
        self._matrices = _padded_matrices(table["adj_bits"].to_numpy()[first])

    @classmethod
    def open(cls, path) -> CellLookup:
        """The lookups of a benchmark Parquet file (checked as Benchmark.open checks it)."""
        return cls(read_benchmark_table(path))

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
        row = -1 if rows is None else (rows + cell if isinstance(rows, int) else rows.item(cell))
        if row < 0:
            raise KeyError(epochs)
        return row

    def repeat(self, row: int, repeat: int) -> list[float]:
        """The 8 values of one repeat of a row, in VALUE_COLUMNS order; IndexError past the repeats."""
        if not 0 <= repeat < self._repeats.item(row):
            raise IndexError(f"repeat {repeat} of a row with {self._repeats.item(row)} repeats")
        return [column.item(row, repeat) for column in self._values]

    def computed(self, cell: int) -> dict[int, list[dict]]:
        """NB-101's computed_stats: {epochs: [one dict per repeat, REPEAT_KEYS]}, budgets ascending."""
        out = {}
        for e in self.budgets:
            try:
                row = self.row(cell, e)
            except KeyError:
                continue
            columns = [self._values[k][row].tolist() for k in _REPEAT_ORDER]
            out[e] = [dict(zip(REPEAT_KEYS, values)) for values in zip(*columns, strict=False)][
                : self._repeats.item(row)
            ]
        return out


def _cells_and_rows(hashes: pa.ChunkedArray, blocks: dict[int, np.ndarray]) -> tuple[np.ndarray, dict]:
    """Row of each cell's first appearance, and per budget its row offset (every budget holding
    the same cells in the same order, as in NB-101's files) or an array of rows (-1: absent)."""
    largest = max(blocks, key=lambda e: len(blocks[e]))
    lo = int(blocks[largest][0])
    reference = hashes.slice(lo, len(blocks[largest]))
    contiguous = all(len(rows) and rows[-1] - rows[0] + 1 == len(rows) for rows in blocks.values())
    if contiguous and all(hashes.slice(int(r[0]), len(r)).equals(reference) for r in blocks.values()):
        return np.arange(lo, lo + len(reference)), {e: int(r[0]) for e, r in blocks.items()}
    index: dict[str, int] = {}
    first: list[int] = []
    cell_of_row = np.empty(len(hashes), dtype=np.int64)
    for row, h in enumerate(hashes.to_pylist()):
        cell = index.setdefault(h, len(index))
        if cell == len(first):
            first.append(row)
        cell_of_row[row] = cell
    rows = {}
    for e, in_budget in blocks.items():
        rows[e] = np.full(len(index), -1, dtype=np.int64)
        rows[e][cell_of_row[in_budget]] = in_budget
    return np.array(first, dtype=np.int64), rows


def _padded_matrices(bits: np.ndarray) -> np.ndarray:
    """(cells, 7, 7) int8 adjacencies from adj_bits (bit x + y(y-1)/2 is edge x->y whatever the
    cell's size): a cell of n vertices fills [:n, :n]."""
    unpacked = np.unpackbits(
        np.ascontiguousarray(bits, dtype="<u4").view(np.uint8).reshape(-1, 4), axis=1, bitorder="little"
    )
    src, dst = np.triu_indices(MAX_VERTICES, 1)
    out = np.zeros((len(bits), MAX_VERTICES, MAX_VERTICES), dtype=np.int8)
    out[:, src, dst] = unpacked[:, src + dst * (dst - 1) // 2]
    return out
