"""NB-101 cell specifications: validation and pruning exactly as NB-101's `ModelSpec` does."""

from __future__ import annotations

import numpy as np

from core.nb101.hashing import hash_module

INPUT = "input"
OUTPUT = "output"
# Order matters: an op's index here is its label in `hash_module` (NB-101's canonical ops).
OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
INPUT_LABEL = -1
OUTPUT_LABEL = -2
MAX_VERTICES = 7
MAX_EDGES = 9


def labeling(ops) -> list[int]:
    """Integer labels of a full ops list: -1 input, -2 output, interior ops by index in OPS."""
    return [INPUT_LABEL] + [OPS.index(op) for op in ops[1:-1]] + [OUTPUT_LABEL]


def kept_vertices(adj: list[list]) -> list[int]:
    """Vertices on an input->output path of an upper-triangular adjacency (nested lists, truthy
    entries are edges), ascending; empty when the input does not reach the output."""
    n = len(adj)
    if n == 0:
        return []
    from_input = [False] * n
    from_input[0] = True
    for v in range(1, n):  # vertices are in topological order: one forward sweep suffices
        from_input[v] = any(adj[u][v] and from_input[u] for u in range(v))
    to_output = [False] * n
    to_output[n - 1] = True
    for v in range(n - 2, -1, -1):
        to_output[v] = any(adj[v][w] and to_output[w] for w in range(v + 1, n))
    return [v for v in range(n) if from_input[v] and to_output[v]]


def prune(matrix: np.ndarray, ops: list[str]) -> tuple[np.ndarray, list[str]] | None:
    """Keep only vertices on an input->output path; None when the input does not reach the output."""
    n = matrix.shape[0]
    keep = kept_vertices(matrix.tolist())
    if not keep or keep[0] != 0 or keep[-1] != n - 1:
        return None
    if len(keep) == n:
        return matrix.copy(), list(ops)
    return matrix[np.ix_(keep, keep)], [ops[i] for i in keep]


def _validate(matrix: np.ndarray, ops) -> None:
    """Raise ValueError naming what is wrong with a (matrix, ops) pair."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be square, got shape {matrix.shape}")
    n = matrix.shape[0]
    if n < 2:
        raise ValueError(f"a cell needs at least an input and an output vertex, got {n} vertices")
    if len(ops) != n:
        raise ValueError(f"ops has {len(ops)} entries but the matrix has {n} vertices")
    if not ((matrix == 0) | (matrix == 1)).all():
        raise ValueError("matrix entries must be 0 or 1")
    below = np.argwhere(np.tril(matrix) != 0)
    if len(below):
        src, dst = below[0]
        raise ValueError(f"matrix must be strictly upper-triangular: entry [{src}, {dst}] is nonzero")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise ValueError(f"ops must start with {INPUT!r} and end with {OUTPUT!r}, got {list(ops)}")
    for i, op in enumerate(ops[1:-1], start=1):
        if op not in OPS:
            raise ValueError(f"unknown op {op!r} at vertex {i}; expected one of {list(OPS)}")


class CellSpec:
    """An NB-101 cell: adjacency matrix plus op names, pruned, checked and hashed like NB-101.

    `original_*` keep what was given; `matrix`/`ops` are the pruned cell (None when invalid).
    `valid` is False when the input does not reach the output or the pruned cell exceeds
    `max_vertices`/`max_edges`; `hash` is NB-101's module hash of the pruned cell, or None.
    """

    def __init__(self, matrix, ops, max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES):
        matrix = np.array(matrix)
        ops = list(ops)
        _validate(matrix, ops)
        self._set(matrix.astype(np.int8), ops, max_vertices, max_edges)
        self.hash = hash_module(self.matrix, labeling(self.ops)) if self.valid else None

    def _set(self, matrix: np.ndarray, ops: list[str], max_vertices: int, max_edges: int) -> None:
        self.original_matrix = matrix
        self.original_ops = ops
        pruned = prune(matrix, ops)
        self.matrix, self.ops = pruned if pruned else (None, None)
        self.valid = (
            pruned is not None
            and self.matrix.shape[0] <= max_vertices
            and int(self.matrix.sum()) <= max_edges
        )
        self.hash = None

    @classmethod
    def unchecked_batch(
        cls, cells, max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES
    ) -> list[CellSpec]:
        """CellSpecs for many (int8 matrix, ops) pairs known to be well-formed (built by this
        package, e.g. neighbourhoods): no input validation, one batched hash call."""
        from core.nb101.hashing import hash_many

        specs = []
        for matrix, ops in cells:
            spec = cls.__new__(cls)
            spec._set(matrix, ops, max_vertices, max_edges)
            specs.append(spec)
        valid = [s for s in specs if s.valid]
        for spec, h in zip(valid, hash_many([s.matrix for s in valid], [labeling(s.ops) for s in valid])):
            spec.hash = h
        return specs

    @property
    def num_vertices(self) -> int:
        return 0 if self.matrix is None else self.matrix.shape[0]

    @property
    def num_edges(self) -> int:
        return 0 if self.matrix is None else int(self.matrix.sum())

    def __repr__(self) -> str:
        rows = self.original_matrix.tolist()
        return f"CellSpec(matrix={rows}, ops={self.original_ops}, hash={self.hash})"
