"""The greedy-search neighbourhood on hand-built cells and across the real space."""

from __future__ import annotations

import numpy as np
import pytest

from core.nb101.neighbours import neighbours
from core.nb101.spec import OPS, CellSpec

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"


def hashes(specs):
    return {s.hash for s in specs}


def test_two_vertex_cell_grows_one_vertex_of_each_op():
    cell = CellSpec([[0, 1], [0, 0]], ["input", "output"])
    result = neighbours(cell)
    assert result[0].hash == cell.hash
    expected = {cell.hash} | {
        CellSpec([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", op, "output"]).hash for op in OPS
    }
    assert hashes(result) == expected and len(result) == 4


def test_chain_by_hand():
    chain = [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    cell = CellSpec(chain, ["input", MP, "output"])
    expected = {cell.hash}
    expected |= {CellSpec(chain, ["input", op, "output"]).hash for op in (C3, C1)}  # op changes
    expected.add(CellSpec([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"]).hash)  # +edge
    for op in OPS:  # one new vertex between each ordered pair of vertices
        # between input and the maxpool
        m = [[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
        expected.add(CellSpec(m, ["input", op, MP, "output"]).hash)
        # between input and output, in parallel with the maxpool
        m = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
        expected.add(CellSpec(m, ["input", MP, op, "output"]).hash)
        # between the maxpool and output
        m = [[0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
        expected.add(CellSpec(m, ["input", MP, op, "output"]).hash)
    result = neighbours(cell)
    assert len(expected) == 13
    assert hashes(result) == expected and len(result) == 13


def test_removing_the_only_path_is_not_a_neighbour():
    cell = CellSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"])
    for n in neighbours(cell):
        assert n.valid and n.num_vertices >= 3  # no edge removal disconnects it


def test_full_cells_do_not_grow_beyond_limits():
    m = np.zeros((7, 7), int)
    for s, d in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (0, 6), (0, 3), (2, 6)]:
        m[s, d] = 1
    cell = CellSpec(m, ["input", C3, C1, MP, C3, C1, "output"])
    assert cell.valid and cell.num_edges == 9
    result = neighbours(cell)
    assert all(n.num_vertices <= 7 and n.num_edges <= 9 for n in result)
    assert len(result) == len(hashes(result))  # deduplicated
    # every op change is there: 5 interior vertices x 2 other ops (none isomorphic here)
    same_matrix = [n for n in result[1:] if n.num_vertices == 7 and n.num_edges == 9]
    assert len(same_matrix) == 10


def test_invalid_cell_has_no_neighbourhood():
    with pytest.raises(ValueError, match="invalid"):
        neighbours(CellSpec([[0, 0], [0, 0]], ["input", "output"]))


def test_neighbours_stay_inside_the_enumerated_space(full_space):
    """Sampled cells' neighbours are all NB-101 cells: their hashes are in the full table."""
    from core.nb101.space import cell_spec

    known = set(full_space["hash"].to_pylist())
    rng = np.random.default_rng(0)
    rows = rng.choice(full_space.num_rows, 40, replace=False)
    sample = full_space.take(rows).to_pylist()
    for row in sample:
        cell = cell_spec(row["adj_bits"], row["num_vertices"], row["ops"])
        assert cell.hash == row["hash"]
        result = neighbours(cell)
        assert hashes(result) <= known
        assert len(result) > 1
