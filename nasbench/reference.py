"""NB-101's own in-memory layout and query path, rebuilt from its documented behaviour: the yardstick.

`DictNASBench` keeps the data as NB-101's `api.NASBench` does (`fixed_statistics` and
`computed_statistics`, nested dicts keyed by hash, one dict per repeat), loads a tfrecord the
way it does (JSON, base64, protobuf per record, no cache) and answers `query` by its path:
check the spec, hash it in plain Python (NB-101's `graph_util.hash_module` algorithm),
deep-copy the cell's dicts, draw a repeat with `random.randint`. Tests use it as the oracle
that `nasbench.api` must match call for call; `benchmarks/bench_nasbench_api.py` times it
beside `nasbench.api` on the same cells. Not for use in searches: it is slow on purpose.
"""

from __future__ import annotations

import base64
import copy
import json
import random

import numpy as np
import pyarrow as pa

from core.nb101 import metrics_proto
from core.nb101.hashing import reference_hash_module
from core.nb101.space import decode_matrices
from core.nb101.spec import INPUT, OPS, OUTPUT
from core.nb101.tfrecord import read_records
from nasbench.lib.config import build_config

_STAGES = (("halfway", 1), ("final", 2))
_FIELDS = ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")


class ReferenceOutOfDomain(Exception):
    """NB-101's OutOfDomainError, for the reference path."""


class DictNASBench:
    """NB-101's nested-dict store and query path (see module docstring)."""

    def __init__(self, seed=None, hash_fn=reference_hash_module):
        self.config = build_config()
        random.seed(seed)
        self.fixed_statistics: dict = {}
        self.computed_statistics: dict = {}
        self.valid_epochs: set = set()
        self.training_time_spent = 0.0
        self.total_epochs_spent = 0
        self._hash_fn = hash_fn
        # NB-101's is_valid checks the spec only; a store holding part of the space also needs
        # the cell to be present (what nasbench.api does on such stores)
        self.require_present = False

    # ---- loading -------------------------------------------------------------------------
    def add_record(self, module_hash, epochs, matrix, operations, params, repeat: dict) -> None:
        """One (cell, budget, repeat) evaluation, as NB-101's loader stores a record."""
        if module_hash not in self.fixed_statistics:
            self.fixed_statistics[module_hash] = {
                "module_adjacency": matrix,
                "module_operations": operations,
                "trainable_parameters": params,
            }
            self.computed_statistics[module_hash] = {}
        self.valid_epochs.add(epochs)
        self.computed_statistics[module_hash].setdefault(epochs, []).append(repeat)

    @classmethod
    def from_tfrecord(cls, path, seed=None, hash_fn=reference_hash_module) -> DictNASBench:
        """Load an official tfrecord record by record, as NB-101's constructor does."""
        bench = cls(seed, hash_fn)
        for record in read_records(path):
            module_hash, epochs, raw_adjacency, raw_operations, raw_metrics = json.loads(record.payload)
            dim = int(np.sqrt(len(raw_adjacency)))
            matrix = np.array([int(e) for e in raw_adjacency], dtype=np.int8).reshape(dim, dim)
            metrics = metrics_proto.message_class().FromString(base64.b64decode(raw_metrics))
            repeat = {}
            for stage, i in _STAGES:
                evaluation = metrics.evaluation_data[i]
                for name in _FIELDS:
                    repeat[f"{stage}_{name}"] = getattr(evaluation, name)
            operations = raw_operations.split(",")
            bench.add_record(module_hash, epochs, matrix, operations, metrics.trainable_parameters, repeat)
        return bench

    @classmethod
    def from_table(cls, table: pa.Table, seed=None, hash_fn=reference_hash_module) -> DictNASBench:
        """The same dicts from a benchmark table (layout of core/nb101/benchmark.py)."""
        bench = cls(seed, hash_fn)
        vertices = table["num_vertices"].to_numpy()
        bits = table["adj_bits"].to_numpy()
        matrices = [None] * table.num_rows
        for n in np.unique(vertices):
            idx = np.flatnonzero(vertices == n)
            for i, m in zip(idx, decode_matrices(bits[idx], int(n)).astype(np.int8)):
                matrices[i] = m
        for row, matrix in zip(table.to_pylist(), matrices):
            n = row["num_vertices"]
            operations = [INPUT] + [OPS[o] for o in row["ops"][: n - 2]] + [OUTPUT]
            for r in range(row["repeats"]):
                repeat = {f"{s}_{f}": row[f"{s}_{f}"][r] for s, _ in _STAGES for f in _FIELDS}
                bench.add_record(
                    row["hash"], row["epochs"], matrix, operations, row["trainable_parameters"], repeat
                )
        return bench

    # ---- NB-101's query path -------------------------------------------------------------
    def query(self, model_spec, epochs=108, stop_halfway=False) -> dict:
        if epochs not in self.valid_epochs:
            raise ReferenceOutOfDomain(f"invalid number of epochs, must be one of {self.valid_epochs}")
        fixed, computed = self.get_metrics_from_spec(model_spec)
        repeat = computed[epochs][random.randint(0, self.config["num_repeats"] - 1)]
        stage = "halfway" if stop_halfway else "final"
        data = {
            "module_adjacency": fixed["module_adjacency"],
            "module_operations": fixed["module_operations"],
            "trainable_parameters": fixed["trainable_parameters"],
        }
        for name in _FIELDS:
            data[name] = repeat[f"{stage}_{name}"]
        self.training_time_spent += data["training_time"]
        self.total_epochs_spent += epochs // 2 if stop_halfway else epochs
        return data

    def is_valid(self, model_spec) -> bool:
        try:
            self._check_spec(model_spec)
        except ReferenceOutOfDomain:
            return False
        return not self.require_present or self._hash(model_spec) in self.fixed_statistics

    def get_budget_counters(self):
        return self.training_time_spent, self.total_epochs_spent

    def reset_budget_counters(self) -> None:
        self.training_time_spent, self.total_epochs_spent = 0.0, 0

    def hash_iterator(self):
        return self.fixed_statistics.keys()

    def get_metrics_from_hash(self, module_hash):
        return (
            copy.deepcopy(self.fixed_statistics[module_hash]),
            copy.deepcopy(self.computed_statistics[module_hash]),
        )

    def get_metrics_from_spec(self, model_spec):
        self._check_spec(model_spec)
        return self.get_metrics_from_hash(self._hash(model_spec))

    def _hash(self, model_spec) -> str:
        ops = self.config["available_ops"]
        labeling = [-1] + [ops.index(op) for op in model_spec.ops[1:-1]] + [-2]
        return self._hash_fn(model_spec.matrix, labeling)

    def _check_spec(self, model_spec) -> None:
        config = self.config
        if not model_spec.valid_spec:
            raise ReferenceOutOfDomain("invalid spec, provided graph is disconnected.")
        if len(model_spec.ops) > config["module_vertices"]:
            raise ReferenceOutOfDomain(f"too many vertices, got {len(model_spec.ops)}")
        if np.sum(model_spec.matrix) > config["max_edges"]:
            raise ReferenceOutOfDomain(f"too many edges, got {np.sum(model_spec.matrix)}")
        if model_spec.ops[0] != "input" or model_spec.ops[-1] != "output":
            raise ReferenceOutOfDomain("first / last operation should be input / output")
        for op in model_spec.ops[1:-1]:
            if op not in config["available_ops"]:
                raise ReferenceOutOfDomain(f"unsupported op {op}")
