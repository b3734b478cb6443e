"""CellSpec: NB-101's pruning cases, validity limits and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from core.nb101.spec import CellSpec

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"


def ops(*interior):
    return ["input", *interior, "output"]


@pytest.mark.parametrize(
    "matrix",
    [
        [[0, 1, 0], [0, 0, 1], [0, 0, 0]],
        [[0, 1, 1], [0, 0, 1], [0, 0, 0]],
        [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
    ],
)
def test_connected_cells_are_not_pruned(matrix):
    n = len(matrix)
    spec = CellSpec(matrix, ops(*[C3] * (n - 2)))
    assert spec.valid
    assert np.array_equal(spec.matrix, spec.original_matrix)
    assert spec.ops == spec.original_ops


def test_islands_are_pruned():
    spec = CellSpec([[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], ops(C3, C1))
    assert spec.valid
    assert spec.matrix.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert spec.ops == ops(C3)
    spec = CellSpec(
        [[0, 1, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
        ops(C3, C1, MP),
    )
    assert spec.matrix.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert spec.ops == ops(C3)


def test_dangling_vertices_are_pruned():
    spec = CellSpec([[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], ops(C3, C1))
    assert spec.matrix.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert spec.ops == ops(C1)
    spec = CellSpec([[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], ops(C3, C1))
    assert spec.matrix.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert spec.ops == ops(C1)
    # pruning keeps the original, and the hash is that of the pruned cell
    assert spec.original_matrix.shape == (4, 4)
    assert spec.hash == CellSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ops(C1)).hash


@pytest.mark.parametrize(
    "matrix",
    [
        [[0, 0], [0, 0]],
        [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]],
        [[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
    ],
)
def test_disconnected_cells_are_invalid(matrix):
    n = len(matrix)
    spec = CellSpec(matrix, ops(*[C3] * (n - 2)))
    assert not spec.valid
    assert spec.hash is None and spec.matrix is None and spec.ops is None


def test_too_many_vertices_or_edges_is_invalid():
    chain8 = np.eye(8, k=1, dtype=int)
    assert not CellSpec(chain8, ops(*[C3] * 6)).valid
    dense = np.triu(np.ones((7, 7), int), 1)  # 21 edges
    spec = CellSpec(dense, ops(*[C3] * 5))
    assert not spec.valid and spec.num_edges == 21
    assert CellSpec(dense, ops(*[C3] * 5), max_edges=21).valid


@pytest.mark.parametrize(
    "matrix, op_list, message",
    [
        ([[0, 1, 0], [0, 0, 1]], ops(C3), "square"),
        ([[0, 1], [0, 0]], ops(C3), "ops has 3 entries but the matrix has 2"),
        ([[0, 1, 0], [0, 0, 1], [1, 0, 0]], ops(C3), r"strictly upper-triangular: entry \[2, 0\]"),
        ([[1, 1], [0, 0]], ops(), r"entry \[0, 0\]"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ops("conv5x5"), "unknown op 'conv5x5' at vertex 1"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [C3, C3, "output"], "must start with 'input'"),
        ([[0, 2], [0, 0]], ops(), "0 or 1"),
    ],
)
def test_bad_input_raises_clear_error(matrix, op_list, message):
    with pytest.raises(ValueError, match=message):
        CellSpec(matrix, op_list)
