"""NB-101's `ModelSpec`: a cell as given (`original_*`) and pruned (`matrix`, `ops`, `valid_spec`).

Behaves as `nasbench/lib/model_spec.py` does, call for call: the same checks and ValueError
messages, the same pruning (vertices off every input->output path are dropped; the spec is
invalid when the input does not reach the output), copies that later edits of the caller's
matrix or ops do not reach, and `hash_spec` giving NB-101's module hash (here by the
project's C kernel, about 10x faster than NB-101's Python).
"""

from __future__ import annotations

import copy

import numpy as np

from core.nb101.hashing import hash_module
from core.nb101.spec import kept_vertices


def is_upper_triangular(matrix) -> bool:
    """True if the matrix is 0 on the diagonal and below."""
    return not np.tril(np.asarray(matrix)).any()


class ModelSpec:
    """Model specification given an adjacency matrix and op labels (input and output included)."""

    def __init__(self, matrix, ops, data_format: str = "channels_last"):
        if not isinstance(matrix, np.ndarray):
            matrix = np.array(matrix)
        shape = np.shape(matrix)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError("matrix must be square")
        if shape[0] != len(ops):
            raise ValueError("length of ops must match matrix dimensions")
        if not is_upper_triangular(matrix):
            raise ValueError("matrix must be upper triangular")
        self.original_matrix = matrix.copy()
        self.original_ops = copy.deepcopy(ops)
        self.matrix = matrix.copy()
        self.ops = copy.deepcopy(ops)
        self.valid_spec = True
        self._prune()
        self.data_format = data_format

    def _prune(self) -> None:
        """Drop the vertices that are not on an input->output path (all of them: invalid spec)."""
        n = self.original_matrix.shape[0]
        keep = kept_vertices(self.original_matrix.tolist())
        if len(keep) < 2:
            self.matrix, self.ops, self.valid_spec = None, None, False
            return
        extraneous = [v for v in range(n) if v not in keep]
        if extraneous:
            self.matrix = np.delete(np.delete(self.matrix, extraneous, axis=0), extraneous, axis=1)
            for index in reversed(extraneous):
                del self.ops[index]

    def hash_spec(self, canonical_ops) -> str:
        """NB-101's isomorphism-invariant hash; ops are labelled by their index in `canonical_ops`."""
        labeling = [-1] + [canonical_ops.index(op) for op in self.ops[1:-1]] + [-2]
        return hash_module(self.matrix, labeling)

    def visualize(self):
        """The pruned cell as a graphviz Digraph (needs the optional `graphviz` package)."""
        try:
            import graphviz
        except ImportError:
            raise ImportError("ModelSpec.visualize needs the optional graphviz package") from None
        n = np.shape(self.matrix)[0]
        g = graphviz.Digraph()
        g.node("0", "input")
        for v in range(1, n - 1):
            g.node(str(v), self.ops[v])
        g.node(str(n - 1), "output")
        for src in range(n - 1):
            for dst in range(src + 1, n):
                if self.matrix[src, dst]:
                    g.edge(str(src), str(dst))
        return g

    def __repr__(self) -> str:
        return f"ModelSpec(matrix={self.original_matrix.tolist()}, ops={self.original_ops})"
