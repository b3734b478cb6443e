"""hash_module against NB-101's own test cases, golden hashes and the plain-Python oracle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.nb101 import hashing
from core.nb101.hashing import hash_many, hash_module, reference_hash_module

DIAMOND = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
CHAIN5 = np.array([[0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])


def permute(matrix, labels, perm):
    """Vertex perm[v] of the result is vertex v of the input."""
    n = len(labels)
    inverse = np.argsort(perm)
    out = matrix[np.ix_(inverse, inverse)]
    return out, [labels[inverse[i]] for i in range(n)]


@pytest.fixture(params=["native", "python"])
def impl(request, monkeypatch):
    """Run a test once on the C kernel and once on the Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(hashing, "native", lambda: None)
    else:
        assert hashing.native() is not None, "the C kernel should build on this machine"
    return request.param


def test_label_permutation_of_diamond_is_isomorphic(impl):
    assert hash_module(DIAMOND, [-1, 1, 2, -2]) == hash_module(DIAMOND, [-1, 2, 1, -2])


def test_edge_permutations_hash_equal_and_relabelings_differ(impl):
    m1 = np.array([[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    m2 = np.array([[0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    m3 = np.array([[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    l1, l2, l3 = [-1, 1, 2, 3, -2], [-1, 2, 3, 1, -2], [-1, 2, 1, 3, -2]
    assert hash_module(m1, l1) == hash_module(m2, l2) == hash_module(m3, l3)
    assert hash_module(m1, l2) != hash_module(m1, l1)
    assert hash_module(m1, l3) != hash_module(m1, l1)


def test_non_isomorphic_regular_graphs_differ(impl):
    m1 = np.zeros((8, 8), int)
    for s, d in [(0, 1), (1, 2), (1, 3), (1, 6), (2, 4), (2, 5), (3, 4), (3, 5), (4, 6), (5, 6), (6, 7)]:
        m1[s, d] = 1
    m2 = np.zeros((8, 8), int)
    for s, d in [(0, 1), (1, 2), (1, 3), (1, 5), (2, 4), (2, 6), (3, 4), (3, 5), (4, 6), (5, 6), (6, 7)]:
        m2[s, d] = 1
    labels = [-1, 1, 1, 1, 1, 1, 1, -2]
    assert hash_module(m1, labels) != hash_module(m2, labels)


def test_tricky_non_isomorphic_cases_differ(impl):
    # breaks if a vertex's own hash is left out of its update
    assert hash_module(CHAIN5, [-1, 1, 0, 0, -2]) != hash_module(CHAIN5, [-1, 0, 0, 1, -2])
    # breaks if edges are treated as undirected
    m = np.array([[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]])
    assert hash_module(m, [-1, 1, 0, -2]) != hash_module(m, [-1, 0, 1, -2])
    # breaks if only out-neighbours are used
    m = np.zeros((7, 7), int)
    for s, d in [(0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (2, 6), (3, 5), (4, 5), (5, 6)]:
        m[s, d] = 1
    assert hash_module(m, [-1, 1, 0, 0, 0, 0, -2]) != hash_module(m, [-1, 0, 0, 0, 1, 0, -2])


def test_random_isomorphic_graphs_hash_equal(impl):
    """Any directed labelled graph (self-loops, up to 20 vertices) hashes like its permutations."""
    rng = np.random.default_rng(0)
    for _ in range(150):
        n = int(rng.integers(3, 21))
        matrix = rng.integers(0, 2, (n, n))
        labels = rng.integers(0, 11, n).tolist()
        pm, pl = permute(matrix, labels, rng.permutation(n))
        assert hash_module(matrix, labels) == hash_module(pm, pl)


def test_readme_cell_and_first_hash_golden(nb101_dir):
    golden = json.loads((nb101_dir / "golden_inception_28cfc787.json").read_text())
    spec = golden["spec_as_in_nasbench_README"]
    ops = ["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"]
    labels = [-1] + [ops.index(o) for o in spec["ops"][1:-1]] + [-2]
    assert hash_module(np.array(spec["matrix"]), labels) == "28cfc7874f6d200472e1a9dcd8650aa0"
    first = json.loads((nb101_dir / "golden_00005c14_first_hash.json").read_text())
    labels = [-1] + [ops.index(o) for o in first["ops"][1:-1]] + [-2]
    assert hash_module(np.array(first["matrix"]), labels) == first["module_hash"]


def test_native_batch_equals_reference_on_random_graphs():
    rng = np.random.default_rng(1)
    matrices, labelings = [], []
    for _ in range(2000):
        n = int(rng.integers(2, 9))
        matrices.append(np.triu(rng.integers(0, 2, (n, n)), 1))
        labelings.append([-1] + rng.integers(0, 3, n - 2).tolist() + [-2])
    expected = [reference_hash_module(m, lab) for m, lab in zip(matrices, labelings)]
    assert hash_many(matrices, labelings) == expected


def test_reference_oracle_reproduces_known_md5_values():
    """The oracle itself is checked against a hash NB-101 published (README cell)."""
    m = np.zeros((7, 7), int)
    for s, d in [(0, 1), (0, 2), (0, 3), (0, 5), (1, 6), (2, 6), (3, 4), (4, 6), (5, 6)]:
        m[s, d] = 1
    assert reference_hash_module(m, [-1, 1, 0, 0, 0, 2, -2]) == "28cfc7874f6d200472e1a9dcd8650aa0"


def test_mismatched_labels_raise():
    with pytest.raises(ValueError, match="3 labels"):
        hash_module(DIAMOND, [-1, 0, -2])
    with pytest.raises(ValueError, match="one labeling per matrix"):
        hash_many([DIAMOND], [])
