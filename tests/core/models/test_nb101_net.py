"""The PyTorch NB-101 network: parameter counts and the cell's data flow, by hand."""

from __future__ import annotations

import json

import numpy as np
import torch

from core.models.nb101_net import Cell, NB101Network, count_trainable
from core.nb101.params import Macro, count_parameters
from core.nb101.spec import CellSpec, labeling

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"


def test_readme_cell_has_the_benchmark_parameter_count(nb101_dir):
    spec = json.loads((nb101_dir / "golden_inception_28cfc787.json").read_text())[
        "spec_as_in_nasbench_README"
    ]
    assert count_trainable(NB101Network(CellSpec(spec["matrix"], spec["ops"]))) == 2_694_282


def test_parameter_count_matches_the_formula_on_random_cells(full_space):
    rng = np.random.default_rng(0)
    from core.nb101.space import cell_spec

    for row in full_space.take(rng.choice(full_space.num_rows, 25, replace=False)).to_pylist():
        spec = cell_spec(row["adj_bits"], row["num_vertices"], row["ops"])
        assert count_trainable(NB101Network(spec, Macro(stem_filters=16))) == row["params_16"]
        small = Macro(stem_filters=8, num_stacks=2, modules_per_stack=1, in_channels=1)
        assert count_trainable(NB101Network(spec, small)) == count_parameters(
            spec.matrix, labeling(spec.ops), small
        )


def test_cell_adds_projected_input_to_its_output():
    spec = CellSpec([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"])
    cell = Cell(spec, 4, 6).eval()
    x = torch.randn(2, 4, 5, 5)
    expected = cell.ops["1"](cell.proj["1"](x)) + cell.proj["2"](x)
    assert torch.allclose(cell(x), expected)


def test_cell_truncates_wider_vertices_and_concatenates_outputs():
    # three vertices feed the output: 8 = 3 + 3 + 2 channels; vertex 1 (3 ch) also feeds vertex 3 (2 ch)
    m = np.zeros((5, 5), int)
    m[0, 1] = m[0, 2] = m[1, 3] = m[1, 4] = m[2, 4] = m[3, 4] = 1
    spec = CellSpec(m, ["input", C1, C3, C1, "output"])
    cell = Cell(spec, 4, 8).eval()
    assert cell.channels == [4, 3, 3, 2, 8]
    x = torch.randn(2, 4, 6, 6)
    v1 = cell.ops["1"](cell.proj["1"](x))
    v2 = cell.ops["2"](cell.proj["2"](x))
    v3 = cell.ops["3"](v1[:, :2])
    assert torch.allclose(cell(x), torch.cat([v1, v2, v3], dim=1))


def test_two_vertex_cell_is_a_projection_and_shapes_follow_the_stacks():
    spec = CellSpec([[0, 1], [0, 0]], ["input", "output"])
    net = NB101Network(spec, Macro(stem_filters=4, num_stacks=3, modules_per_stack=2, in_channels=1))
    out = net(torch.randn(3, 1, 8, 8))
    assert out.shape == (3, 10)
    cells = [m for m in net.cells if isinstance(m, Cell)]
    assert len(cells) == 6 and [c.channels[-1] for c in cells] == [4, 4, 8, 8, 16, 16]
