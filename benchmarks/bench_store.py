"""Benchmark store speed: open and look up in a 423,624-cell table; tfrecord import throughput.

Baselines measured in the same run:
- NASLib's layout: a pickled dict {hash: (fixed_stats, {108: [repeat dicts]})} loaded whole,
  then looked up one hash at a time in Python.
- for the import: the same tfrecord file read with a pure-Python CRC-32C (what a reader
  without native code does).
"""

from __future__ import annotations

import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from _timing import best_time

from core.nb101 import tfrecord
from core.nb101.benchmark import VALUE_COLUMNS, Benchmark, build_table
from core.nb101.export import export_tfrecord
from core.nb101.importers import import_tfrecord
from core.nb101.space import enumerate_space, write_table

N_LOOKUPS = 1_000_000
N_RECORDS = 100_000


def synthetic_table(space: pa.Table, seed: int = 0) -> pa.Table:
    """Real cell structure, random metrics: the real size and schema of nasbench_only108."""
    rng = np.random.default_rng(seed)
    n = space.num_rows
    cells = {
        "hash": space["hash"].to_numpy(zero_copy_only=False),
        "epochs": np.full(n, 108),
        "num_vertices": space["num_vertices"].to_numpy(),
        "adj_bits": space["adj_bits"].to_numpy(),
        "ops": np.asarray(space["ops"].combine_chunks().flatten()).reshape(n, 5),
        "trainable_parameters": space["params_128"].to_numpy(),
    }
    values = {name: rng.uniform(0.1, 0.95, (n, 3)) for name in VALUE_COLUMNS}
    return build_table(cells, values, {"source": "synthetic", "source_format": "synthetic"})


def naslib_dict(table: pa.Table) -> dict:
    out = {}
    cols = {name: np.asarray(table[name].combine_chunks().flatten()).reshape(-1, 3) for name in VALUE_COLUMNS}
    for i, (h, params) in enumerate(
        zip(table["hash"].to_pylist(), table["trainable_parameters"].to_pylist())
    ):
        fixed = {"module_adjacency": None, "module_operations": None, "trainable_parameters": params}
        repeats = [{name: float(cols[name][i, r]) for name in VALUE_COLUMNS} for r in range(3)]
        out[h] = (fixed, {108: repeats})
    return out


def main() -> None:
    space = enumerate_space()
    table = synthetic_table(space)
    with tempfile.TemporaryDirectory() as tmp:
        path, pkl = Path(tmp) / "bench.parquet", Path(tmp) / "nb101.pkl"
        write_table(table, path)
        pkl.write_bytes(pickle.dumps(naslib_dict(table), protocol=pickle.HIGHEST_PROTOCOL))
        t_open, bench = best_time(lambda: Benchmark.open(path))
        t_pkl, records = best_time(lambda: pickle.loads(pkl.read_bytes()), 1)
        print(
            f"open {table.num_rows:,} cells: Benchmark.open {t_open:.3f} s (goal < 1 s), "
            f"NASLib pickle {t_pkl:.3f} s -> {t_pkl / t_open:.1f}x"
        )

        rng = np.random.default_rng(1)
        hashes = table["hash"].to_numpy(zero_copy_only=False)[rng.integers(0, table.num_rows, N_LOOKUPS)]
        t_query, got = best_time(lambda: bench.query(hashes)["validation_accuracy"])

        def dict_lookup():
            return [[rep["final_validation_accuracy"] for rep in records[h][1][108]] for h in hashes]

        t_dict, ref = best_time(dict_lookup, 1)
        assert np.array_equal(got, np.array(ref)), "lookups disagree"
        print(
            f"{N_LOOKUPS:,} random lookups: Benchmark.query {t_query:.3f} s (goal < 1 s), "
            f"dict loop {t_dict:.3f} s -> {t_dict / t_query:.1f}x"
        )

        rec_path = Path(tmp) / "synthetic.tfrecord"
        n_records = export_tfrecord(table.slice(0, N_RECORDS // 3 + 1), rec_path)
        t_import, _ = best_time(lambda: import_tfrecord(rec_path, verbose=False), 1)
        original = tfrecord.crc32c
        tfrecord.crc32c = tfrecord._crc32c_python
        try:
            start = time.perf_counter()
            count = sum(1 for _ in tfrecord.read_records(rec_path))
            t_pure = time.perf_counter() - start
        finally:
            tfrecord.crc32c = original
        size_mb = rec_path.stat().st_size / 1e6
        print(
            f"import {n_records:,} records ({size_mb:.0f} MB): {t_import:.2f} s = "
            f"{n_records / t_import:,.0f} records/s; pure-Python CRC framing alone {t_pure:.2f} s "
            f"({count / t_pure:,.0f} records/s) -> {t_pure / t_import:.1f}x"
        )


if __name__ == "__main__":
    main()
