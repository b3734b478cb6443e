"""Write a benchmark table back out as official NB-101 tfrecord records.

Each (cell, epochs, repeat) becomes one record whose JSON payload is
`[hash, epochs, adjacency, operations, base64(ModelMetrics)]`, as in `nasbench_*.tfrecord`.
Used for round-trip tests, for synthetic files in benchmarks, and to hand data to tools that
only read the official format.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from core.nb101 import metrics_proto
from core.nb101.space import decode_matrices
from core.nb101.spec import INPUT, OPS, OUTPUT
from core.nb101.tfrecord import write_records


def _cell_strings(bits: int, n: int, ops: list[int]) -> tuple[str, str]:
    matrix = decode_matrices(np.array([bits]), n)[0]
    adjacency = "".join(str(int(x)) for x in matrix.ravel())
    names = [INPUT] + [OPS[o] for o in ops[: n - 2]] + [OUTPUT]
    return adjacency, ",".join(names)


def official_payloads(table: pa.Table) -> Iterator[bytes]:
    """JSON payloads of the records a benchmark table stands for, repeat by repeat."""
    for row in table.to_pylist():
        adjacency, operations = _cell_strings(row["adj_bits"], row["num_vertices"], row["ops"])
        for r in range(len(row["final_validation_accuracy"])):
            if np.isnan(row["final_validation_accuracy"][r]):
                continue
            evaluations = [dict.fromkeys(metrics_proto.EVAL_FIELDS, 0.0)]
            for stage, epoch in (("halfway", row["epochs"] / 2), ("final", float(row["epochs"]))):
                ev = {"current_epoch": epoch}
                for m in ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy"):
                    ev[m] = row[f"{stage}_{m}"][r]
                evaluations.append(ev)
            metrics = metrics_proto.ModelMetrics(evaluations, row["trainable_parameters"], 0.0)
            raw = base64.b64encode(metrics_proto.encode(metrics)).decode("ascii")
            yield json.dumps([row["hash"], row["epochs"], adjacency, operations, raw]).encode()


def export_tfrecord(table: pa.Table, path) -> int:
    """Write every repeat of every row as an official record; returns the record count."""
    return write_records(path, official_payloads(table))
