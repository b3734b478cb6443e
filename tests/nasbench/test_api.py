"""`from nasbench import api`: NB-101's README example, its query semantics and errors, on real data.

Reference values: the golden README cell (all its metrics) and the 151,644 real cells read
straight from the shipped .npz parts (`real_nb101`), never through the code under test; and
`nasbench.reference.DictNASBench`, NB-101's nested-dict layout and query path, as the oracle
that `api.NASBench` must match call for call under the same seed.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from core.nb101.hashing import reference_hash_module
from core.nb101.lookup import REPEAT_KEYS
from core.nb101.real_subset import REAL_SUBSET_DIR
from core.nb101.space import decode_matrices
from core.nb101.spec import OPS
from nasbench import api
from nasbench.reference import DictNASBench, ReferenceOutOfDomain

INPUT = "input"
OUTPUT = "output"
CONV1X1 = "conv1x1-bn-relu"
CONV3X3 = "conv3x3-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
README_HASH = "28cfc7874f6d200472e1a9dcd8650aa0"
README_MATRIX = [
    [0, 1, 1, 1, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 1, 0, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0],
]
README_OPS = [INPUT, CONV1X1, CONV3X3, CONV3X3, CONV3X3, MAXPOOL3X3, OUTPUT]
QUERY_KEYS = [
    "module_adjacency",
    "module_operations",
    "trainable_parameters",
    "training_time",
    "train_accuracy",
    "validation_accuracy",
    "test_accuracy",
]


@pytest.fixture(scope="module")
def golden(nb101_dir):
    return json.loads((nb101_dir / "golden_inception_28cfc787.json").read_text())


def real_repeats(real, i: int) -> list[dict]:
    """The 108-epoch repeat dicts of real cell i, read from the .npz arrays."""
    acc_fields = [str(f) for f in real["acc_fields"]]
    time_fields = [str(f) for f in real["time_fields"]]
    out = []
    for r in range(3):
        rep = {}
        for key in REPEAT_KEYS:
            if key.endswith("training_time"):
                rep[key] = float(real["times"][i, r, time_fields.index(key)])
            else:
                rep[key] = float(real["accuracy"][i, r, acc_fields.index(key)])
        out.append(rep)
    return out


def real_cell(real, i: int) -> tuple[np.ndarray, list[str]]:
    """Stored matrix and ops of real cell i."""
    n = int(real["n_vertices"][i])
    matrix = decode_matrices(real["adj_bits"][i : i + 1], n)[0]
    return matrix, [INPUT, *[OPS[o] for o in real["ops"][i, : n - 2]], OUTPUT]


def test_readme_example_runs_unchanged(cache_here, golden):
    dataset_file = str(REAL_SUBSET_DIR)  # the only change: the path to the data
    # --- NB-101's README example ---
    nasbench = api.NASBench(dataset_file)
    model_spec = api.ModelSpec(
        matrix=[
            [0, 1, 1, 1, 0, 1, 0],  # input layer
            [0, 0, 0, 0, 0, 0, 1],  # 1x1 conv
            [0, 0, 0, 0, 0, 0, 1],  # 3x3 conv
            [0, 0, 0, 0, 1, 0, 0],  # 5x5 conv (replaced by two 3x3's)
            [0, 0, 0, 0, 0, 0, 1],  # 5x5 conv (replaced by two 3x3's)
            [0, 0, 0, 0, 0, 0, 1],  # 3x3 max-pool
            [0, 0, 0, 0, 0, 0, 0],
        ],  # output layer
        ops=[INPUT, CONV1X1, CONV3X3, CONV3X3, CONV3X3, MAXPOOL3X3, OUTPUT],
    )
    data = nasbench.query(model_spec)
    # --- end of the example ---
    assert list(data) == QUERY_KEYS
    finals = [
        {
            m: rep[f"final_{m}"]
            for m in ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")
        }
        for rep in golden["computed_stats"]["108"]
    ]
    assert {m: data[m] for m in finals[0]} in finals
    stored = golden["stored_canonical_spec_from_NASBench_ipynb_output"]
    assert data["module_adjacency"].tolist() == stored["module_adjacency"]
    assert data["module_adjacency"].dtype == np.int8
    assert data["module_operations"] == stored["module_operations"]
    assert data["trainable_parameters"] == golden["trainable_parameters"] == 2_694_282
    assert type(data["trainable_parameters"]) is int and type(data["test_accuracy"]) is float
    assert nasbench.get_budget_counters() == (data["training_time"], 108)
    assert len(list(cache_here.glob("nb101-stores/real_subset-*.parquet"))) == 1


def test_query_draws_the_repeat_python_random_draws(real_api, real_nb101):
    rows = [0, 7, 151_643, 42_000, 7]
    specs = [api.ModelSpec(*real_cell(real_nb101, i)) for i in rows]
    random.seed(1234)
    got = [real_api.query(spec) for spec in specs]
    draws = random.Random(1234)
    for i, data in zip(rows, got):
        rep = real_repeats(real_nb101, i)[draws.randint(0, 2)]
        assert data["validation_accuracy"] == rep["final_validation_accuracy"]
        assert data["test_accuracy"] == rep["final_test_accuracy"]
        assert data["train_accuracy"] == rep["final_train_accuracy"]
        assert data["training_time"] == rep["final_training_time"]
        assert data["trainable_parameters"] == int(real_nb101["trainable_parameters"][i])


def test_two_apis_with_one_seed_draw_the_same_repeats(real_store, real_nb101):
    specs = [api.ModelSpec(*real_cell(real_nb101, i)) for i in range(0, 150_000, 997)]
    first = api.NASBench(real_store, seed=7)
    a = [first.query(s)["validation_accuracy"] for s in specs]
    second = api.NASBench(real_store, seed=7)
    b = [second.query(s)["validation_accuracy"] for s in specs]
    assert a == b and len(set(a)) > 100


def test_halfway_query_and_budget_counters(real_api, real_nb101):
    spec = api.ModelSpec(*real_cell(real_nb101, 5))
    real_api.reset_budget_counters()
    random.seed(3)
    half = real_api.query(spec, stop_halfway=True)
    rep = real_repeats(real_nb101, 5)[random.Random(3).randint(0, 2)]
    assert half["validation_accuracy"] == rep["halfway_validation_accuracy"]
    assert half["training_time"] == rep["halfway_training_time"]
    full = real_api.query(spec)
    assert real_api.get_budget_counters() == (half["training_time"] + full["training_time"], 54 + 108)
    real_api.reset_budget_counters()
    assert real_api.get_budget_counters() == (0.0, 0)
    assert real_api.valid_epochs == {108}


def test_get_metrics_from_hash_and_spec_are_the_real_numbers(real_api, real_nb101):
    for i in (0, 1, 99_999, 151_643):
        h = str(real_nb101["hash"][i])
        fixed, computed = real_api.get_metrics_from_hash(h)
        matrix, ops = real_cell(real_nb101, i)
        assert list(fixed) == ["module_adjacency", "module_operations", "trainable_parameters"]
        assert fixed["module_adjacency"].tolist() == matrix.tolist()
        assert fixed["module_operations"] == ops
        assert fixed["trainable_parameters"] == int(real_nb101["trainable_parameters"][i])
        assert computed == {108: real_repeats(real_nb101, i)}
        assert list(computed[108][0]) == list(REPEAT_KEYS)
        assert real_api.get_metrics_from_spec(api.ModelSpec(matrix, ops))[1] == computed
    before = real_api.get_budget_counters()  # analysis calls do not count against the budget
    real_api.get_metrics_from_hash(str(real_nb101["hash"][3]))
    assert real_api.get_budget_counters() == before


def test_hash_iterator_and_statistics_views(real_api, real_nb101):
    hashes = real_api.hash_iterator()
    assert type(hashes) is type({}.keys())
    assert len(hashes) == 151_644 and set(hashes) == set(real_nb101["hash"].tolist())
    h = str(real_nb101["hash"][10])
    assert real_api.fixed_statistics[h]["trainable_parameters"] == int(real_nb101["trainable_parameters"][10])
    assert real_api.computed_statistics[h][108][2] == real_repeats(real_nb101, 10)[2]
    assert h in real_api.fixed_statistics and len(real_api.computed_statistics) == 151_644
    with pytest.raises(KeyError, match="f" * 32):
        real_api.get_metrics_from_hash("f" * 32)


def test_returned_values_are_copies(real_api, golden):
    spec = api.ModelSpec(README_MATRIX, README_OPS)
    first = real_api.query(spec)
    first["module_adjacency"][0, 1] = 9
    first["module_operations"].append("junk")
    fixed, computed = real_api.get_metrics_from_hash(README_HASH)
    fixed["module_adjacency"][:] = 0
    computed[108].clear()
    again = real_api.query(spec)
    stored = golden["stored_canonical_spec_from_NASBench_ipynb_output"]
    assert again["module_adjacency"].tolist() == stored["module_adjacency"]
    assert again["module_operations"] == stored["module_operations"]
    assert len(real_api.get_metrics_from_hash(README_HASH)[1][108]) == 3


@pytest.mark.parametrize(
    "matrix, ops, message",
    [
        ([[0, 0], [0, 0]], [INPUT, OUTPUT], "invalid spec, provided graph is disconnected."),
        (
            np.eye(8, k=1, dtype=int).tolist(),
            [INPUT] + [CONV3X3] * 6 + [OUTPUT],
            r"too many vertices, got 8 \(max vertices = 7\)",
        ),
        (
            np.triu(np.ones((7, 7), dtype=int), 1).tolist(),
            [INPUT] + [CONV3X3] * 5 + [OUTPUT],
            r"too many edges, got 21 \(max edges = 9\)",
        ),
        ([[0, 1], [0, 0]], [CONV3X3, OUTPUT], "first operation should be 'input'"),
        ([[0, 1], [0, 0]], [INPUT, INPUT], "last operation should be 'output'"),
        (
            [[0, 1, 0], [0, 0, 1], [0, 0, 0]],
            [INPUT, "conv5x5", OUTPUT],
            r"unsupported op conv5x5 \(available ops = "
            r"\['conv3x3-bn-relu', 'conv1x1-bn-relu', 'maxpool3x3'\]\)",
        ),
    ],
)
def test_out_of_domain_errors_as_nb101_raises_them(real_api, matrix, ops, message):
    spec = api.ModelSpec(matrix, ops)
    assert not real_api.is_valid(spec)
    before = (random.getstate(), real_api.get_budget_counters())
    with pytest.raises(api.OutOfDomainError, match=f"^{message}$"):
        real_api.query(spec)
    with pytest.raises(api.OutOfDomainError, match=f"^{message}$"):
        real_api.get_metrics_from_spec(spec)
    assert (random.getstate(), real_api.get_budget_counters()) == before  # nothing drawn or counted


def test_invalid_epochs_is_out_of_domain(real_api):
    with pytest.raises(api.OutOfDomainError, match=r"^invalid number of epochs, must be one of \{108\}$"):
        real_api.query(api.ModelSpec(README_MATRIX, README_OPS), epochs=36)


def test_model_spec_checks_prunes_and_copies():
    with pytest.raises(ValueError, match="^matrix must be square$"):
        api.ModelSpec([[0, 1, 0], [0, 0, 1]], [INPUT, CONV3X3, OUTPUT])
    with pytest.raises(ValueError, match="^length of ops must match matrix dimensions$"):
        api.ModelSpec([[0, 1], [0, 0]], [INPUT, CONV3X3, OUTPUT])
    with pytest.raises(ValueError, match="^matrix must be upper triangular$"):
        api.ModelSpec([[0, 1], [1, 0]], [INPUT, OUTPUT])
    # vertex 2 is not on an input->output path, vertex 3 is never reached: both are pruned
    matrix = np.array([[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    ops = [INPUT, CONV1X1, MAXPOOL3X3, CONV3X3, OUTPUT]
    spec = api.ModelSpec(matrix, ops)
    assert spec.valid_spec and spec.matrix.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert spec.ops == [INPUT, CONV1X1, OUTPUT]
    matrix[0, 3] = 1
    ops[1] = CONV3X3
    assert spec.original_matrix[0, 3] == 0 and spec.original_ops[1] == CONV1X1  # copies were kept
    assert spec.original_matrix.dtype == matrix.dtype
    assert spec.data_format == "channels_last"
    broken = api.ModelSpec([[0, 1, 0], [0, 0, 0], [0, 0, 0]], [INPUT, CONV3X3, OUTPUT])
    assert not broken.valid_spec and broken.matrix is None and broken.ops is None


def test_hash_spec_is_nb101s_hash_and_ignores_vertex_order():
    spec = api.ModelSpec(README_MATRIX, README_OPS)
    canonical = ["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"]
    assert spec.hash_spec(canonical) == README_HASH
    perm = [0, 5, 3, 4, 2, 1, 6]  # relabel the interior vertices (keeps the matrix upper-triangular)
    m = np.array(README_MATRIX)[np.ix_(perm, perm)]
    relabelled = api.ModelSpec(m, [README_OPS[p] for p in perm])
    assert relabelled.hash_spec(canonical) == README_HASH
    labels = [-1] + [canonical.index(op) for op in relabelled.ops[1:-1]] + [-2]
    assert reference_hash_module(relabelled.matrix, labels) == README_HASH
    from nasbench.lib import graph_util

    assert graph_util.hash_module(np.array(README_MATRIX), [-1, 1, 0, 0, 0, 2, -2]) == README_HASH


def test_call_for_call_against_nb101s_layout(real_store, real_nb101):
    """Same seed, same calls: the same answers and errors as NB-101's dict layout and query path."""
    from core.nb101.benchmark import Benchmark

    rng = np.random.default_rng(5)
    rows = np.sort(rng.choice(151_644, 400, replace=False))
    table = Benchmark.open(real_store).table.take(rows)
    oracle = DictNASBench.from_table(table)
    ours = api.NASBench(real_store)
    calls = []
    for k, i in enumerate(rows):
        matrix, ops = real_cell(real_nb101, int(i))
        perm = [0, *(1 + rng.permutation(len(ops) - 2)), len(ops) - 1]
        if k % 3 == 0 and len(ops) > 3 and np.triu(matrix[np.ix_(perm, perm)], 1).sum() == matrix.sum():
            matrix, ops = matrix[np.ix_(perm, perm)], [ops[p] for p in perm]  # an isomorphic copy
        calls.append((api.ModelSpec(matrix, ops), bool(k % 4 == 1)))
    calls.append((api.ModelSpec([[0, 0], [0, 0]], [INPUT, OUTPUT]), False))  # out of domain
    for who in (oracle, ours):
        random.seed(99)
        who.answers = []
        for spec, halfway in calls:
            try:
                who.answers.append(who.query(spec, stop_halfway=halfway))
            except (api.OutOfDomainError, ReferenceOutOfDomain) as err:
                who.answers.append(type(err).__name__)
    assert len(ours.answers) == len(oracle.answers) == 401
    for mine, theirs in zip(ours.answers, oracle.answers):
        if isinstance(theirs, str):
            assert (mine, theirs) == ("OutOfDomainError", "ReferenceOutOfDomain")
            continue
        assert mine["module_adjacency"].tolist() == theirs["module_adjacency"].tolist()
        assert {k: v for k, v in mine.items() if k != "module_adjacency"} == {
            k: v for k, v in theirs.items() if k != "module_adjacency"
        }
    assert ours.get_budget_counters() == oracle.get_budget_counters()
    for h in list(oracle.hash_iterator())[:50]:
        mine, theirs = ours.get_metrics_from_hash(h), oracle.get_metrics_from_hash(h)
        assert mine[1] == theirs[1] and mine[0]["module_operations"] == theirs[0]["module_operations"]
