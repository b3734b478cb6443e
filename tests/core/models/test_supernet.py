"""The supernet: each path is the standalone network with the same weights; banks and slicing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.models.supernet import Supernet, bank_size, extract_standalone
from core.nb101.params import Macro
from core.nb101.space import cell_spec, subspace
from core.nb101.spec import CellSpec

MACRO = Macro(stem_filters=12, num_stacks=2, modules_per_stack=2, in_channels=3)


def _random_cells(full_space, space: str, n: int, seed: int = 0):
    sub = subspace(full_space, space)
    rows = sub.take(np.random.default_rng(seed).choice(sub.num_rows, n, replace=False)).to_pylist()
    return [cell_spec(r["adj_bits"], r["num_vertices"], r["ops"]) for r in rows]


@pytest.mark.parametrize("space", ["FULL", "A1", "A3", "NRES"])
def test_every_path_computes_the_standalone_network(full_space, space):
    torch.manual_seed(0)
    supernet = Supernet(space, MACRO)
    cells = _random_cells(full_space, space, 6)
    x = torch.randn(5, 3, 12, 12)
    supernet.train()
    for cell in cells:  # move the BN statistics away from their initial values
        supernet(x, cell)
    for cell in cells:
        net = extract_standalone(supernet, cell)
        supernet.eval(), net.eval()
        assert torch.allclose(supernet(x, cell), net(x), atol=1e-5), cell.hash
        supernet.train(), net.train()
        assert torch.allclose(supernet(x, cell), net(x), atol=1e-5), cell.hash


def test_a_path_updates_only_its_slice_of_the_batch_norm_bank():
    supernet = Supernet("FULL", MACRO).train()
    chain = CellSpec(
        [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]],
        ["input", "conv3x3-bn-relu", "conv3x3-bn-relu", "output"],
    )
    two = CellSpec(
        [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
        ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "output"],
    )
    supernet(torch.randn(4, 3, 8, 8), two)  # two vertices feed the output: 12 = 6 + 6 channels
    bn = supernet.cells[0].vertices[0].bn3
    assert (bn.running_mean[:6] != 0).all() and (bn.running_mean[6:] == 0).all()
    supernet(torch.randn(4, 3, 8, 8), chain)  # a chain uses all 12
    assert (bn.running_mean[6:] != 0).all()


def test_single_kernel_uses_the_centre_of_the_3x3():
    supernet = Supernet("FULL", MACRO, single_kernel=True)
    vertex = supernet.cells[0].vertices[0]
    assert vertex.w1 is None
    assert torch.equal(vertex.kernel(1, 5), vertex.w3[:5, :5, 1:2, 1:2])
    assert sum(p.numel() for p in supernet.parameters()) < sum(
        p.numel() for p in Supernet("FULL", MACRO).parameters()
    )


def test_banks_and_cells_that_do_not_fit():
    assert bank_size("FULL", 128) == 128 and bank_size("A3", 128) == 43 and bank_size("A2", 16) == 8
    a2 = Supernet("A2", MACRO)
    chain = CellSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"])  # an A1 cell
    with pytest.raises(ValueError, match="needs 12 channels, space A2 has 6"):
        a2(torch.randn(2, 3, 8, 8), chain)
    with pytest.raises(ValueError, match="invalid cell"):
        a2(torch.randn(2, 3, 8, 8), CellSpec([[0, 0], [0, 0]], ["input", "output"]))
