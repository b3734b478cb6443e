"""NASLib's NB-101 search space on `nasbench.naslib.get_dataset_api()`.

The calls below are those NASLib's `NasBench101SearchSpace` makes on its `dataset_api`
(sample_random_architecture, query, get_arch_iterator, set_spec from a hash string with its
7x7 padding), written from its documented behaviour; NASLib itself is not installed here.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from nasbench import api
from nasbench.naslib import DATA_ENV, get_dataset_api

OPS = ["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"]


def sample_random_architecture(dataset_api) -> dict:
    """NASLib's sampler: random upper-triangular matrix and ops until the data accepts the cell."""
    while True:
        matrix = np.random.choice([0, 1], size=(7, 7))
        matrix = np.triu(matrix, 1)
        ops = np.random.choice(OPS, size=7).tolist()
        ops[0], ops[-1] = "input", "output"
        spec = dataset_api["api"].ModelSpec(matrix=matrix, ops=ops)
        if dataset_api["nb101_data"].is_valid(spec):
            return {"matrix": matrix, "ops": ops}


def query_validation_percent(spec: dict, dataset_api) -> float:
    """NASLib's query(Metric.VAL_ACCURACY): -1 outside the data, else validation accuracy x 100."""
    api_spec = dataset_api["api"].ModelSpec(**spec)
    if not dataset_api["nb101_data"].is_valid(api_spec):
        return -1
    return dataset_api["nb101_data"].query(api_spec)["validation_accuracy"] * 100


def convert_to_cell(matrix: np.ndarray, ops: list[str]) -> dict:
    """NASLib's padding of a stored n-vertex cell to 7 vertices (unused vertices before the output)."""
    n = matrix.shape[0]
    padded = np.zeros((7, 7), dtype="int8")
    padded[: n - 1, : n - 1] = matrix[: n - 1, : n - 1]
    padded[: n - 1, 6] = matrix[: n - 1, n - 1]
    return {"matrix": padded, "ops": ops[: n - 1] + ["conv3x3-bn-relu"] * (7 - n) + ["output"]}


def test_naslib_search_space_calls(real_store, real_nb101):
    dataset_api = get_dataset_api("nasbench101", "cifar10", dataset_file=real_store, seed=0)
    assert dataset_api["api"] is api
    np.random.seed(0)
    fields = [str(f) for f in real_nb101["acc_fields"]]
    val = real_nb101["accuracy"][:, :, fields.index("final_validation_accuracy")].astype(np.float64)
    index = {h: i for i, h in enumerate(real_nb101["hash"].tolist())}
    for _ in range(20):
        spec = sample_random_architecture(dataset_api)
        h = api.ModelSpec(**spec).hash_spec(OPS)
        assert query_validation_percent(spec, dataset_api) in (val[index[h]] * 100).tolist()
    outside = {"matrix": np.zeros((7, 7), dtype=int), "ops": ["input"] + ["maxpool3x3"] * 5 + ["output"]}
    assert query_validation_percent(outside, dataset_api) == -1
    hashes = dataset_api["nb101_data"].hash_iterator()  # get_arch_iterator
    assert len(hashes) == 151_644
    for h in list(hashes)[::15_000]:  # set_spec(hash string): padded cells hash back to themselves
        fixed, _ = dataset_api["nb101_data"].get_metrics_from_hash(h)
        cell = convert_to_cell(fixed["module_adjacency"], fixed["module_operations"])
        assert api.ModelSpec(cell["matrix"], cell["ops"]).hash_spec(OPS) == h


def test_naslib_pickle_as_dataset_file(nb101_dir, cache_here, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(nb101_dir / "naslib_nb101_dummy.pkl"))
    dataset_api = get_dataset_api("nasbench101")
    with open(nb101_dir / "naslib_nb101_dummy_108.csv") as f:
        row = next(csv.DictReader(f))
    fixed, computed = dataset_api["nb101_data"].get_metrics_from_hash(row["module_hash"])
    spec = {"matrix": fixed["module_adjacency"], "ops": fixed["module_operations"]}
    expected = [rep["final_validation_accuracy"] * 100 for rep in computed[108]]
    assert float(row["final_validation_accuracy"]) * 100 in expected
    assert query_validation_percent(spec, dataset_api) in expected


def test_dataset_api_errors(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(ValueError, match=DATA_ENV):
        get_dataset_api("nasbench101")
    with pytest.raises(NotImplementedError, match="nasbench201"):
        get_dataset_api("nasbench201", "cifar10")
    with pytest.raises(ValueError, match="CIFAR-10 only"):
        get_dataset_api("nasbench101", "cifar100", dataset_file="x")
