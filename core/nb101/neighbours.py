"""The greedy-search neighbourhood of an NB-101 cell (thesis 4.3.3).

Neighbours of a cell: the cell itself, every single op change, every valid single edge
addition or removal, and every valid single vertex addition. A vertex addition inserts a new
interior vertex v (any op) between two existing vertices u and w (u before w in topological
order) with edges u->v and v->w; where v sits between u and w does not matter, all positions
give isomorphic cells. Edge edits are made on the pruned cell and re-pruned. Candidates
that are invalid (input cut from output, more than 7 vertices or 9 edges) are dropped; the
rest are deduplicated by hash, the cell itself first.
"""

from __future__ import annotations

import numpy as np

from core.nb101.spec import MAX_EDGES, MAX_VERTICES, OPS, CellSpec


def _op_changes(matrix, ops):
    for t in range(1, len(ops) - 1):
        for op in OPS:
            if op != ops[t]:
                yield matrix, ops[:t] + [op] + ops[t + 1 :]


def _edge_flips(matrix, ops):
    n = matrix.shape[0]
    for src in range(n - 1):
        for dst in range(src + 1, n):
            flipped = matrix.copy()
            flipped[src, dst] ^= 1
            yield flipped, ops


def _vertex_additions(matrix, ops):
    n = matrix.shape[0]
    for src in range(n - 1):
        for dst in range(src + 1, n):
            grown = np.insert(np.insert(matrix, dst, 0, axis=0), dst, 0, axis=1)
            grown[src, dst] = 1
            grown[dst, dst + 1] = 1
            for op in OPS:
                yield grown, ops[:dst] + [op] + ops[dst:]


def neighbours(
    spec: CellSpec, max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES
) -> list[CellSpec]:
    """All distinct valid neighbours of a valid cell, the cell itself first."""
    if not spec.valid:
        raise ValueError(f"neighbours of an invalid cell are undefined: {spec!r}")
    matrix, ops = spec.matrix.astype(np.int8), list(spec.ops)
    candidates = [(matrix, ops)]
    candidates += _op_changes(matrix, ops)
    candidates += _edge_flips(matrix, ops)
    if matrix.shape[0] < max_vertices:
        candidates += _vertex_additions(matrix, ops)
    seen, result = set(), []
    for cell in CellSpec.unchecked_batch(candidates, max_vertices, max_edges):
        if cell.valid and cell.hash not in seen:
            seen.add(cell.hash)
            result.append(cell)
    return result
