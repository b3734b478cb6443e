"""Parameter counts against the benchmark and hand-computed vertex channels."""

from __future__ import annotations

import numpy as np

from core.nb101.params import Macro, count_parameters, count_parameters_batch, vertex_channels
from core.nb101.spec import CellSpec, labeling


def test_output_channels_split_with_remainder_first():
    # three vertices feed the output: 128 = 43 + 43 + 42, the extra channels go first
    m = np.zeros((5, 5), int)
    m[0, 1] = m[0, 2] = m[0, 3] = m[1, 4] = m[2, 4] = m[3, 4] = 1
    assert vertex_channels(128, 128, m) == [128, 43, 43, 42, 128]


def test_inner_vertices_take_max_of_what_they_feed():
    # 1 -> 2 -> out, 1 -> 3 -> out: vertex 1 feeds 2 and 3 (64 each) and takes 64
    m = np.zeros((5, 5), int)
    m[0, 1] = m[1, 2] = m[1, 3] = m[2, 4] = m[3, 4] = 1
    assert vertex_channels(32, 128, m) == [32, 64, 64, 64, 128]


def test_two_vertex_cell_keeps_only_input_and_output():
    assert vertex_channels(16, 32, np.array([[0, 1], [0, 0]])) == [16, 32]


def test_two_vertex_network_by_hand():
    # stem 3x3 conv 3->16 + BN; each cell is a 1x1 projection + BN; dense 64->10
    spec = CellSpec([[0, 1], [0, 0]], ["input", "output"])
    macro = Macro(stem_filters=16)
    expected = 27 * 16 + 32
    for c_in, c_out in macro.module_channels():
        expected += c_in * c_out + 2 * c_out
    expected += 64 * 10 + 10
    assert count_parameters(spec.matrix, labeling(spec.ops), macro) == expected


def test_module_channels_double_at_each_stack():
    assert Macro(stem_filters=16).module_channels() == [
        (16, 16),
        (16, 16),
        (16, 16),
        (16, 32),
        (32, 32),
        (32, 32),
        (32, 64),
        (64, 64),
        (64, 64),
    ]


def test_benchmark_parameter_counts_on_real_cells(real_nb101):
    """A sample of real cells across vertex counts has the benchmark's trainable_parameters."""
    from core.nb101.space import decode_matrices

    rng = np.random.default_rng(0)
    for i in rng.choice(len(real_nb101["hash"]), 300, replace=False):
        n = int(real_nb101["n_vertices"][i])
        matrix = decode_matrices(real_nb101["adj_bits"][i : i + 1], n)[0]
        labels = [-1] + real_nb101["ops"][i, : n - 2].tolist() + [-2]
        assert count_parameters(matrix, labels) == real_nb101["trainable_parameters"][i]


def test_batch_count_equals_single_count():
    m = np.zeros((5, 5), int)
    m[0, 1] = m[1, 2] = m[2, 4] = m[0, 3] = m[3, 4] = m[0, 4] = 1
    interior = np.array([[0, 1, 2], [2, 2, 2], [1, 0, 1]])
    batch = count_parameters_batch(m, interior)
    single = [count_parameters(m, [-1, *row, -2]) for row in interior.tolist()]
    assert batch.tolist() == single
