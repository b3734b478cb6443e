"""NAS-Bench-101's user API, drop-in: `NASBench`, `ModelSpec`, `OutOfDomainError`.

A compatible implementation over `core.nb101` (not Google's code). Same behaviour as
google-research/nasbench `nasbench/api.py`, call for call:

- `NASBench(dataset_file, seed=None)` seeds Python's global `random` with `seed` and loads
  the data; `query(spec, epochs=108, stop_halfway=False)` checks the spec, hashes it, draws
  one repeat with `random.randint(0, num_repeats - 1)` (so a seeded script draws the same
  repeats as with NB-101's API) and adds to the budget counters (halfway: epochs // 2).
- `get_metrics_from_hash` / `get_metrics_from_spec` return new fixed / computed dicts of the
  same structure; `hash_iterator`, `is_valid`, `get_budget_counters`, `reset_budget_counters`,
  `valid_epochs`, `config`, `fixed_statistics`, `computed_statistics`; the same
  `OutOfDomainError` messages in the same cases; KeyError for a hash the data lacks.

What differs, on purpose: `dataset_file` may be the official tfrecord (imported once into a
cached Parquet store; later opens take well under a second), a Parquet store of
`python -m core.nb101 import`, NASLib's pickle (read by a restricted unpickler) or the real
subset's folder; returned numbers are plain Python floats and ints. On a store that holds
only part of the 423,624 cells (the real subset), `is_valid` is also False for a cell the
store lacks, so that search loops written for the full data run unchanged on it; on the full
data the answers are the same as NB-101's. `evaluate` trains with the project's PyTorch NB-101
network on the CIFAR-10 folder of `config['cifar10_dir']`.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from core.nb101.cache import cached_store
from core.nb101.lookup import CellLookup
from core.nb101.space import NUM_CELLS
from nasbench.lib import config as _config
from nasbench.lib.model_spec import ModelSpec

__all__ = ["NASBench", "ModelSpec", "OutOfDomainError"]

_FINAL = (0, 1, 2, 3)  # train, validation, test accuracy and training time in CellLookup.repeat
_HALFWAY = (4, 5, 6, 7)


class OutOfDomainError(Exception):
    """Indicates that the requested graph is outside of the search domain."""


class NASBench:
    """User-facing API for accessing the NAS-Bench-101 dataset."""

    def __init__(self, dataset_file, seed=None):
        self.config = _config.build_config()
        random.seed(seed)
        print(f"Loading dataset from {dataset_file} ...")
        start = time.time()
        self.dataset_file = str(dataset_file)
        self.store = cached_store(dataset_file)
        self._cells = CellLookup.open(self.store)
        self.valid_epochs = set(self._cells.budgets)
        self.fixed_statistics = _FixedStatistics(self._cells)
        self.computed_statistics = _ComputedStatistics(self._cells)
        self._complete = len(self._cells) == NUM_CELLS
        print(f"Loaded dataset in {time.time() - start:.2f} seconds ({len(self._cells):,} cells)")
        self.history = {}
        self.training_time_spent = 0.0
        self.total_epochs_spent = 0

    # ---- queries that count against the budget -------------------------------------------
    def query(self, model_spec, epochs=108, stop_halfway=False):
        """One of the evaluations of this spec, drawn at random; adds to the budget counters.

        Returns module_adjacency, module_operations, trainable_parameters and the
        training_time, train/validation/test accuracy at `epochs` (or at epochs/2 with
        `stop_halfway`). Raises OutOfDomainError for a spec or budget outside the space.
        """
        if epochs not in self.valid_epochs:
            raise OutOfDomainError(f"invalid number of epochs, must be one of {self.valid_epochs}")
        self._check_spec(model_spec)
        cells = self._cells
        cell = cells.cell(self._hash_spec(model_spec))
        sampled_index = random.randint(0, self.config["num_repeats"] - 1)
        values = cells.repeat(cells.row(cell, epochs), sampled_index)
        train, validation, test, seconds = (values[i] for i in (_HALFWAY if stop_halfway else _FINAL))
        data = {
            "module_adjacency": cells.matrix(cell),
            "module_operations": cells.operations(cell),
            "trainable_parameters": cells.parameters(cell),
            "training_time": seconds,
            "train_accuracy": train,
            "validation_accuracy": validation,
            "test_accuracy": test,
        }
        self.training_time_spent += seconds
        self.total_epochs_spent += epochs // 2 if stop_halfway else epochs
        return data

    def evaluate(self, model_spec, model_dir):
        """Train and evaluate a spec from scratch (no dataset lookup) on `config['cifar10_dir']`.

        Writes `metadata.json` to `model_dir` and returns a dict with query()'s keys. Raises
        ValueError when no CIFAR-10 folder is configured, FileNotFoundError naming missing files.
        """
        from core.data.cifar10 import cifar10_splits
        from core.nb101.evaluate import train_and_evaluate
        from core.nb101.spec import CellSpec

        folder = self.config.get("cifar10_dir")
        if not folder:
            raise ValueError(
                "evaluate() trains on CIFAR-10 and needs a local copy: set "
                "config['cifar10_dir'] to a folder holding cifar-10-batches-py (torchvision's "
                "layout); nothing is downloaded"
            )
        if not model_spec.valid_spec:
            raise OutOfDomainError("invalid spec, provided graph is disconnected.")
        cell = CellSpec(model_spec.matrix, model_spec.ops, max_vertices=10**6, max_edges=10**6)
        metadata = train_and_evaluate(cell, cifar10_splits(folder), _recipe(self.config))
        os.makedirs(model_dir, exist_ok=True)
        (Path(model_dir) / "metadata.json").write_text(json.dumps(metadata, default=_plain))
        final = metadata["evaluation_results"][-1]
        return {
            "module_adjacency": model_spec.matrix,
            "module_operations": model_spec.ops,
            "trainable_parameters": metadata["trainable_params"],
            "training_time": final["training_time"],
            "train_accuracy": final["train_accuracy"],
            "validation_accuracy": final["validation_accuracy"],
            "test_accuracy": final["test_accuracy"],
        }

    # ---- checks and counters -------------------------------------------------------------
    def is_valid(self, model_spec):
        """True if the spec is within the space (and, on a partial store, in the store)."""
        try:
            self._check_spec(model_spec)
        except OutOfDomainError:
            return False
        return self._complete or self._hash_spec(model_spec) in self._cells

    def get_budget_counters(self):
        """(training time spent, epochs spent) by query() since the last reset."""
        return self.training_time_spent, self.total_epochs_spent

    def reset_budget_counters(self):
        """Reset the time and epoch budget counters."""
        self.training_time_spent = 0.0
        self.total_epochs_spent = 0

    # ---- dataset analysis (no budget) ----------------------------------------------------
    def hash_iterator(self):
        """The unique module hashes of the data (a dict keys view)."""
        return self._cells.keys()

    def get_metrics_from_hash(self, module_hash):
        """(fixed_stats, computed_stats) of a hash: new dicts, all budgets and repeats."""
        cell = self._cells.cell(module_hash)
        return self._cells.fixed(cell), self._cells.computed(cell)

    def get_metrics_from_spec(self, model_spec):
        """(fixed_stats, computed_stats) of a spec; OutOfDomainError outside the space."""
        self._check_spec(model_spec)
        return self.get_metrics_from_hash(self._hash_spec(model_spec))

    def _check_spec(self, model_spec):
        """Raise OutOfDomainError, with NB-101's messages, for a spec outside the space."""
        if not model_spec.valid_spec:
            raise OutOfDomainError("invalid spec, provided graph is disconnected.")
        matrix = model_spec.matrix
        num_vertices = len(model_spec.ops)
        num_edges = matrix.sum() if isinstance(matrix, np.ndarray) else np.sum(matrix)
        if num_vertices > self.config["module_vertices"]:
            limit = self.config["module_vertices"]
            raise OutOfDomainError(f"too many vertices, got {num_vertices} (max vertices = {int(limit)})")
        if num_edges > self.config["max_edges"]:
            limit = self.config["max_edges"]
            raise OutOfDomainError(f"too many edges, got {int(num_edges)} (max edges = {int(limit)})")
        if model_spec.ops[0] != "input":
            raise OutOfDomainError("first operation should be 'input'")
        if model_spec.ops[-1] != "output":
            raise OutOfDomainError("last operation should be 'output'")
        available = self.config["available_ops"]
        for op in model_spec.ops[1:-1]:
            if op not in available:
                raise OutOfDomainError(f"unsupported op {op} (available ops = {available})")

    def _hash_spec(self, model_spec):
        """The module hash of a spec under the configured op order."""
        return model_spec.hash_spec(self.config["available_ops"])


class _FixedStatistics(Mapping):
    """`NASBench.fixed_statistics`: hash -> fixed dict, built on access (read-only)."""

    def __init__(self, cells: CellLookup):
        self._cells = cells

    def __getitem__(self, module_hash):
        return self._cells.fixed(self._cells.cell(module_hash))

    def __iter__(self):
        return iter(self._cells.keys())

    def __len__(self):
        return len(self._cells)

    def __contains__(self, module_hash):
        return module_hash in self._cells


class _ComputedStatistics(_FixedStatistics):
    """`NASBench.computed_statistics`: hash -> {epochs: [repeat dicts]}, built on access."""

    def __getitem__(self, module_hash):
        return self._cells.computed(self._cells.cell(module_hash))


def _recipe(config: dict):
    """The training recipe of a NASBench config (NB-101's keys; lr scaled by TPU shards as NB-101 does)."""
    from core.nb101.evaluate import Recipe

    shards = config["tpu_num_shards"] if config["use_tpu"] else 1
    return Recipe(
        stem_filters=config["stem_filter_size"],
        num_stacks=config["num_stacks"],
        modules_per_stack=config["num_modules_per_stack"],
        num_labels=config["num_labels"],
        batch_size=config["batch_size"],
        epochs=config["train_epochs"],
        lr=config["learning_rate"] * shards,
        momentum=config["momentum"],
        weight_decay=config["weight_decay"],
        evaluations=tuple(sorted({float(f) for f in config["intermediate_evaluations"]} | {1.0})),
        seed=config["seed"],
        device=config["device"],
        torch_threads=config["torch_threads"],
    )


def _plain(value):
    """JSON for numpy values in metadata."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
