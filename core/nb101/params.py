"""Parameter counts of the NB-101 network (stem, 3 stacks of 3 cells, dense), as NB-101 builds it.

The counts equal the benchmark's `trainable_parameters` for 128 filters; other filter counts
(the 16-filter supernets of the thesis) follow the same rules. Conv layers have no bias; every
batch norm has a scale and a shift (2 parameters a channel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_OPS = 3  # labels 0 conv3x3, 1 conv1x1, 2 maxpool3x3
_KERNEL = (3, 1, 0)  # kernel size by op label; 0 = no weights


@dataclass(frozen=True)
class Macro:
    """The NB-101 macro-structure: the stem, the stacks of cells and the classifier."""

    stem_filters: int = 128
    num_stacks: int = 3
    modules_per_stack: int = 3
    num_labels: int = 10
    in_channels: int = 3

    def module_channels(self) -> list[tuple[int, int]]:
        """(input, output) channels of every cell in order; channels double at each new stack."""
        pairs, channels, previous = [], self.stem_filters, self.stem_filters
        for stack in range(self.num_stacks):
            if stack > 0:
                channels *= 2
            for _ in range(self.modules_per_stack):
                pairs.append((previous, channels))
                previous = channels
        return pairs


DEFAULT_MACRO = Macro()


def vertex_channels(input_channels: int, output_channels: int, matrix) -> list[int]:
    """NB-101's `compute_vertex_channels`: output channels of every vertex of a pruned cell.

    Vertices feeding the output split the output channels (the remainder goes one by one to
    the first ones); every other interior vertex takes the max over the vertices it feeds.
    """
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    channels = [0] * n
    channels[0] = input_channels
    channels[n - 1] = output_channels
    if n == 2:
        return channels
    fan_in = int(matrix[1:, n - 1].sum())
    interior, correction = divmod(output_channels, fan_in)
    for v in range(1, n - 1):
        if matrix[v, n - 1]:
            channels[v] = interior + (1 if correction else 0)
            correction = max(correction - 1, 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v, n - 1]:
            for dst in range(v + 1, n - 1):
                if matrix[v, dst]:
                    channels[v] = max(channels[v], channels[dst])
    return channels


def module_coefficients(matrix, c_in: int, c_out: int) -> tuple[int, np.ndarray]:
    """Parameters of one cell as `const + sum_t coef[t, label_t]` over interior vertices t.

    Splitting the count this way lets one matrix be priced for all its labelings at once.
    """
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    vc = vertex_channels(c_in, c_out, matrix)
    const = 0
    coef = np.zeros((n, N_OPS), dtype=np.int64)
    for t in range(1, n - 1):
        if matrix[0, t]:  # 1x1 projection of the cell input, with batch norm
            const += c_in * vc[t] + 2 * vc[t]
        for label, k in enumerate(_KERNEL):
            if k:
                coef[t, label] = k * k * vc[t] * vc[t] + 2 * vc[t]
    if matrix[0, n - 1]:  # projection of the input added to the output
        const += c_in * c_out + 2 * c_out
    return const, coef


def network_coefficients(matrix, macro: Macro = DEFAULT_MACRO) -> tuple[int, np.ndarray]:
    """`module_coefficients` summed over every cell of the network, plus stem and classifier."""
    const = macro.in_channels * macro.stem_filters * 9 + 2 * macro.stem_filters
    last = macro.module_channels()[-1][1]
    const += last * macro.num_labels + macro.num_labels
    coef = None
    for c_in, c_out in macro.module_channels():
        k, c = module_coefficients(matrix, c_in, c_out)
        const += k
        coef = c if coef is None else coef + c
    return const, coef


def count_parameters(matrix, labels, macro: Macro = DEFAULT_MACRO) -> int:
    """Trainable parameters of the NB-101 network for a pruned cell (labels as in hash_module)."""
    const, coef = network_coefficients(matrix, macro)
    interior = np.asarray(labels[1:-1], dtype=np.int64)
    return int(const + coef[np.arange(1, len(labels) - 1), interior].sum())


def count_parameters_batch(matrix, interior_labels: np.ndarray, macro: Macro = DEFAULT_MACRO) -> np.ndarray:
    """Parameters for one matrix under many labelings: (L, V-2) interior labels -> (L,) counts."""
    const, coef = network_coefficients(matrix, macro)
    n = np.asarray(matrix).shape[0]
    rows = np.arange(1, n - 1)
    return const + coef[rows, interior_labels].sum(axis=1)
