"""`NASBench.evaluate`: trains a cell in the project's NB-101 network on a CIFAR-10 folder."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from core.data.cifar10 import TEST_FILES, TRAIN_FILES, VALIDATION_FILES
from core.nb101.params import Macro, count_parameters
from nasbench import api

MATRIX = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
OPS = ["input", "conv3x3-bn-relu", "maxpool3x3", "output"]


def _cifar_folder(root, n=32):
    """A CIFAR-10 folder in torchvision's layout: n images per batch file, labels by colour."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in TRAIN_FILES + VALIDATION_FILES + TEST_FILES:
        labels = rng.integers(0, 10, n)
        data = (labels[:, None] * 25 + rng.integers(0, 5, (n, 3072))).astype(np.uint8)
        entry = {b"data": data, b"labels": labels.tolist()}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    return root


@pytest.fixture
def bench(real_store):
    """A NASBench of its own: these tests change its config."""
    return api.NASBench(real_store)


def _small_config(nb, folder) -> None:
    nb.config.update(
        cifar10_dir=str(folder),
        stem_filter_size=8,
        num_stacks=1,
        num_modules_per_stack=1,
        batch_size=16,
        train_epochs=2,
        torch_threads=1,
    )


def test_evaluate_trains_the_cell_and_writes_metadata(bench, tmp_path):
    _small_config(bench, _cifar_folder(tmp_path / "data"))
    spec = api.ModelSpec(MATRIX, OPS)
    data = bench.evaluate(spec, str(tmp_path / "model"))
    assert list(data) == [
        "module_adjacency",
        "module_operations",
        "trainable_parameters",
        "training_time",
        "train_accuracy",
        "validation_accuracy",
        "test_accuracy",
    ]
    macro = Macro(stem_filters=8, num_stacks=1, modules_per_stack=1)
    assert data["trainable_parameters"] == count_parameters(np.array(MATRIX), [-1, 0, 2, -2], macro)
    assert all(0.0 <= data[k] <= 1.0 for k in ("train_accuracy", "validation_accuracy", "test_accuracy"))
    metadata = json.loads((tmp_path / "model" / "metadata.json").read_text())
    results = metadata["evaluation_results"]
    assert [r["epochs"] for r in results] == [0.0, 1.0, 2.0]
    assert [r["training_steps"] for r in results] == [0, 8, 16]  # 128 images, 16 a step: 8 steps an epoch
    assert results[-1]["training_time"] == data["training_time"] > results[1]["training_time"] > 0
    assert bench.get_budget_counters() == (0.0, 0)  # evaluate spends no query budget


def test_evaluate_says_what_is_missing(bench, tmp_path):
    spec = api.ModelSpec(MATRIX, OPS)
    bench.config["cifar10_dir"] = None
    with pytest.raises(ValueError, match=r"config\['cifar10_dir'\]"):
        bench.evaluate(spec, str(tmp_path / "model"))
    folder = _cifar_folder(tmp_path / "partial")
    (folder / "cifar-10-batches-py" / "test_batch").unlink()
    bench.config["cifar10_dir"] = str(folder)
    with pytest.raises(FileNotFoundError, match="test_batch"):
        bench.evaluate(spec, str(tmp_path / "model"))
    disconnected = api.ModelSpec([[0, 0], [0, 0]], ["input", "output"])
    with pytest.raises(api.OutOfDomainError, match="disconnected"):
        bench.evaluate(disconnected, str(tmp_path / "model"))
