"""A tabular NB-101 benchmark as one Parquet file, queried in columns.

Layout (schema version 1), one row per (cell, epochs), rows sorted by (epochs, hash):

    hash                 string, NB-101 module hash (32 hex chars)
    epochs               uint16, training budget of the row (4/12/36/108 in NB-101)
    num_vertices         uint8, vertices of the pruned cell
    adj_bits             uint32, edge x->y is bit x + y*(y-1)/2 (NB-101's stored matrix)
    ops                  fixed_size_list<uint8>[5], interior op labels, 255 unused
    trainable_parameters uint32
    repeats              uint8, repeats present (NB-101: 3)
    final_train_accuracy, final_validation_accuracy, final_test_accuracy, final_training_time,
    halfway_train_accuracy, halfway_validation_accuracy, halfway_test_accuracy,
    halfway_training_time
                         fixed_size_list<float64>[R], one value per repeat, NaN where absent

File metadata: schema_version, source, source_format, source_size, source_sha256,
imported_at, records, corrupt_records, description, dataset (what the cells were trained on:
`cifar10` for NB-101's own files, `digits` for the embedded mini-benchmark; files written before
it was recorded get it from their source_format). This is the "equivalent layout" of one row per
(cell, epochs, repeat): repeats sit side by side so a query is one gather.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.nb101.space import MAX_INTERIOR, SUBSPACES, subspace_mask, write_table

SCHEMA_VERSION = 1
METRICS = ("train_accuracy", "validation_accuracy", "test_accuracy", "training_time")
STAGES = ("final", "halfway")
VALUE_COLUMNS = tuple(f"{s}_{m}" for s in STAGES for m in METRICS)
CELL_COLUMNS = ("hash", "epochs", "num_vertices", "adj_bits", "ops", "trainable_parameters", "repeats")
DEFAULT_MINIBENCH = Path(__file__).parent / "data" / "minibench_digits.parquet"
DATASET_OF_FORMAT = {  # the data each writer's cells were trained on
    "nb101-tfrecord": "cifar10",
    "naslib-pickle": "cifar10",
    "real-subset-npz": "cifar10",
    "minibench": "digits",
}
_NIBBLE = np.full(256, 255, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_NIBBLE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_NIBBLE[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)


def hash_words(hashes) -> np.ndarray:
    """Hex hashes -> (N, 2) uint64 (big-endian halves): sorting them sorts the hex strings."""
    arr = np.asarray(hashes)
    if arr.dtype.kind == "U":
        arr = arr.astype("S32")
    if arr.dtype != np.dtype("S32"):
        arr = arr.astype("S32")
    raw = arr.view(np.uint8).reshape(len(arr), 32)
    nib = _NIBBLE[raw]
    bad = (nib == 255).any(axis=1)
    if bad.any():
        raise ValueError(f"not a 32-character hex hash: {arr[np.flatnonzero(bad)[0]]!r}")
    packed = (nib[:, 0::2] << 4) | nib[:, 1::2]
    return np.ascontiguousarray(packed).view(">u8").astype(np.uint64).reshape(len(arr), 2)


def build_table(cells: dict, values: dict, metadata: dict) -> pa.Table:
    """Assemble a benchmark table from per-row cell arrays and (N, R) value arrays; sorts rows."""
    order = np.lexsort((np.asarray(cells["hash"]), np.asarray(cells["epochs"])))
    n_rep = next(iter(values.values())).shape[1]
    columns = {
        "hash": pa.array(np.asarray(cells["hash"], dtype="U32")[order]),
        "epochs": pa.array(np.asarray(cells["epochs"], dtype=np.uint16)[order]),
        "num_vertices": pa.array(np.asarray(cells["num_vertices"], dtype=np.uint8)[order]),
        "adj_bits": pa.array(np.asarray(cells["adj_bits"], dtype=np.uint32)[order]),
        "ops": pa.FixedSizeListArray.from_arrays(
            pa.array(np.asarray(cells["ops"], dtype=np.uint8)[order].ravel()), MAX_INTERIOR
        ),
        "trainable_parameters": pa.array(np.asarray(cells["trainable_parameters"], dtype=np.uint32)[order]),
        "repeats": pa.array((~np.isnan(values["final_validation_accuracy"][order])).sum(1).astype(np.uint8)),
    }
    for name in VALUE_COLUMNS:
        flat = pa.array(np.asarray(values[name], dtype=np.float64)[order].ravel())
        columns[name] = pa.FixedSizeListArray.from_arrays(flat, n_rep)
    meta = {"schema_version": str(SCHEMA_VERSION)} | {k: str(v) for k, v in metadata.items()}
    dataset = DATASET_OF_FORMAT.get(meta.get("source_format", ""))
    if dataset and "dataset" not in meta:
        meta["dataset"] = dataset
    return pa.table(columns).replace_schema_metadata(meta)


class BenchmarkError(ValueError):
    """A benchmark file that cannot be used (missing columns, wrong schema version, ...)."""


def checked_metadata(table: pa.Table, source: str) -> dict[str, str]:
    """The metadata of a benchmark table; BenchmarkError for missing columns or another schema version."""
    missing = [c for c in CELL_COLUMNS + VALUE_COLUMNS if c not in table.column_names]
    if missing:
        raise BenchmarkError(f"{source}: not a benchmark table, missing columns {missing}")
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        raise BenchmarkError(
            f"{source}: schema version {meta.get('schema_version')!r}, this code reads {SCHEMA_VERSION}"
        )
    return meta


def read_benchmark_table(path) -> pa.Table:
    """A benchmark Parquet file as a checked Arrow table (memory-mapped read)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"benchmark file not found: {path}")
    try:
        table = pq.read_table(path, memory_map=True)
    except pa.ArrowInvalid as err:
        raise BenchmarkError(f"{path}: not a Parquet file ({err})") from err
    checked_metadata(table, str(path))
    return table


class Benchmark:
    """Column queries over a tabular benchmark: `query(hashes)` returns numpy arrays."""

    def __init__(self, table: pa.Table, source: str = "<memory>"):
        meta = checked_metadata(table, source)
        self.table, self.source, self.metadata = table, source, meta
        self._epochs = table["epochs"].to_numpy()
        self._words = hash_words(table["hash"].to_numpy(zero_copy_only=False))
        self._values: dict[str, np.ndarray] = {}
        self._blocks = {}
        for e in np.unique(self._epochs):
            idx = np.flatnonzero(self._epochs == e)
            self._blocks[int(e)] = (int(idx[0]), int(idx[-1]) + 1)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def open(cls, path) -> Benchmark:
        """Memory-map a benchmark Parquet file (as written by `python -m core.nb101 import`)."""
        return cls(read_benchmark_table(path), str(path))

    @classmethod
    def real_subset(cls, root=None) -> Benchmark:
        """The 151,644 real NB-101 cells shipped in `core/nb101/data/real_subset/` (108 epochs)."""
        from core.nb101.importers import import_real_subset

        table = import_real_subset(root) if root else import_real_subset()
        return cls(table, table.schema.metadata[b"source"].decode())

    @classmethod
    def default(cls) -> Benchmark:
        """The embedded benchmark the project builds itself (NB-101 cells on digits)."""
        return cls.open(DEFAULT_MINIBENCH)

    def save(self, path) -> None:
        write_table(self.table, Path(path))

    # ---- facts --------------------------------------------------------------------------
    @property
    def epochs(self) -> list[int]:
        """Training budgets present, ascending."""
        return sorted(self._blocks)

    @property
    def dataset(self) -> str | None:
        """What the cells were trained on (`cifar10`, `digits`), None when the file does not say."""
        return self.metadata.get("dataset") or DATASET_OF_FORMAT.get(self.metadata.get("source_format", ""))

    @property
    def final_epochs(self) -> int:
        """The largest budget: the default for queries (108 for NB-101)."""
        return self.epochs[-1]

    def _block(self, epochs: int | None) -> tuple[int, int]:
        epochs = self.final_epochs if epochs is None else int(epochs)
        if epochs not in self._blocks:
            raise KeyError(f"{self.source}: no rows for {epochs} epochs; available: {self.epochs}")
        return self._blocks[epochs]

    def cells(self, epochs: int | None = None, subspace: str = "FULL") -> pa.Table:
        """Cell structure columns (hash, num_vertices, adj_bits, ops, ...) of a sub-space."""
        lo, hi = self._block(epochs)
        table = self.table.slice(lo, hi - lo).select(list(CELL_COLUMNS))
        structure = structure_columns(table)
        return table.filter(subspace_mask(structure, subspace))

    def _column(self, name: str) -> np.ndarray:
        if name not in self._values:
            col = self.table[name].combine_chunks()
            width = col.type.list_size
            self._values[name] = np.asarray(col.flatten()).reshape(-1, width)
        return self._values[name]

    def lookup(self, hashes, epochs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of `hashes` and a mask of the ones found (vectorised binary search)."""
        lo, hi = self._block(epochs)
        words = self._words[lo:hi]
        query = hash_words(hashes)
        pos = np.searchsorted(words[:, 0], query[:, 0])
        pos = np.minimum(pos, max(len(words) - 1, 0))
        found = (words[pos, 0] == query[:, 0]) & (words[pos, 1] == query[:, 1]) if len(words) else pos < 0
        clash = ~found & (words[pos, 0] == query[:, 0]) if len(words) else found
        for i in np.flatnonzero(clash):  # equal upper halves: resolve on the full 128 bits
            j = np.flatnonzero((words[:, 0] == query[i, 0]) & (words[:, 1] == query[i, 1]))
            if len(j):
                pos[i], found[i] = j[0], True
        return pos + lo, found

    def query(self, hashes, epochs: int | None = None, missing: str = "raise") -> dict[str, np.ndarray]:
        """Metrics of many cells: (N, repeats) arrays per metric and (N,) trainable_parameters.

        Keys: validation_accuracy, test_accuracy, train_accuracy, training_time (final epoch)
        and halfway_* counterparts. Unknown hashes raise KeyError naming them, or with
        missing="mask" come back as NaN rows plus a boolean "found" array.
        """
        if missing not in ("raise", "mask"):
            raise ValueError(f"missing must be 'raise' or 'mask', got {missing!r}")
        hashes = np.asarray(hashes)
        rows, found = self.lookup(hashes, epochs)
        if missing == "raise" and not found.all():
            unknown = hashes[~found]
            shown = ", ".join(map(str, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
            raise KeyError(
                f"{len(unknown)} hash(es) not in {self.source} at {epochs or self.final_epochs} "
                f"epochs: {shown}"
            )
        out: dict[str, np.ndarray] = {}
        for name in VALUE_COLUMNS:
            values = self._column(name)[rows]
            key = name.removeprefix("final_")
            out[key] = np.where(found[:, None], values, np.nan) if not found.all() else values
        params = self.table["trainable_parameters"].to_numpy()[rows].astype(np.int64)
        out["trainable_parameters"] = np.where(found, params, -1)
        if missing == "mask":
            out["found"] = found
        return out

    def mean(self, metric: str = "test_accuracy", epochs: int | None = None) -> np.ndarray:
        """Per-row mean over repeats of a final metric, for every cell of a budget, in row order."""
        lo, hi = self._block(epochs)
        return np.nanmean(self._column(f"final_{metric}")[lo:hi], axis=1)

    def best(self, subspace: str = "FULL", epochs: int | None = None) -> dict:
        """Best mean validation and test accuracy (the reference point of regrets), per sub-space."""
        lo, hi = self._block(epochs)
        mask = np.asarray(subspace_mask(structure_columns(self.table.slice(lo, hi - lo)), subspace))
        if not mask.any():
            raise ValueError(f"sub-space {subspace} has no cells in {self.source}")
        val = self.mean("validation_accuracy", epochs)
        test = self.mean("test_accuracy", epochs)
        hashes = self.table["hash"].slice(lo, hi - lo).to_numpy(zero_copy_only=False)
        i_val = np.flatnonzero(mask)[np.argmax(val[mask])]
        i_test = np.flatnonzero(mask)[np.argmax(test[mask])]
        return {
            "subspace": subspace,
            "cells": int(mask.sum()),
            "best_mean_validation_accuracy": float(val[i_val]),
            "best_validation_hash": str(hashes[i_val]),
            "best_mean_test_accuracy": float(test[i_test]),
            "best_test_hash": str(hashes[i_test]),
        }

    def summary(self) -> dict:
        """Sizes and best accuracies per sub-space at the final budget, for reports."""
        facts = {}
        for name in SUBSPACES:
            try:
                facts[name] = self.best(name)
            except ValueError:
                facts[name] = {"subspace": name, "cells": 0}
        return {"source": self.source, "epochs": self.epochs, "metadata": self.metadata, "subspaces": facts}

    def __repr__(self) -> str:
        return f"Benchmark({self.source!r}, rows={self.table.num_rows}, epochs={self.epochs})"


def structure_columns(table: pa.Table) -> pa.Table:
    """`output_fan_in` and `input_to_output` derived from adj_bits and num_vertices."""
    bits = table["adj_bits"].to_numpy().astype(np.int64)
    nv = table["num_vertices"].to_numpy().astype(np.int64)
    out = nv - 1
    base = out * (out - 1) // 2  # bit of edge x -> out is base + x
    to_output = (bits >> base) & ((np.int64(1) << out) - 1)
    fan_in = np.zeros(len(bits), dtype=np.int64)
    for x in range(1, 6):
        fan_in += ((to_output >> x) & 1) * (x < out)
    return pa.table(
        {
            "num_vertices": table["num_vertices"],
            "output_fan_in": pa.array(fan_in.astype(np.uint8)),
            "input_to_output": pa.array((to_output & 1).astype(bool)),
        }
    )


def describe(bench: Benchmark) -> str:
    """A short JSON summary (sizes and best accuracies by sub-space)."""
    return json.dumps(bench.summary(), indent=1, default=str)
